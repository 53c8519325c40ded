"""Clients that speak Anthropic's Messages API to the gateway (`POST /v1/messages`):
their request in OpenAI chat format for routing, and the OpenAI answer (JSON or
stream chunks) back as an Anthropic Message or Anthropic SSE events.

Pure functions and a small stateful stream converter; no I/O. Malformed input
that cannot be translated raises ``ValueError`` (the pipeline answers 400).
The other direction (to an Anthropic upstream) is the Anthropic adapter's.
"""

from __future__ import annotations

import json
from typing import Any

from providers.adapters.anthropic import int_or_zero, new_id, text_of, tool_use_to_tool_call

_FINISH_TO_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def sse_event(event: str, data: dict) -> bytes:
    """Serialise one Anthropic-style server-sent event."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


# --------------------------------------------------------------------------
# Anthropic request -> OpenAI request
# --------------------------------------------------------------------------


def _anthropic_block_to_openai_part(block: dict) -> dict:
    btype = block.get("type")
    if btype == "text":
        return {"type": "text", "text": block.get("text") or ""}
    source = block.get("source") or {}
    if btype == "image":
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = source.get("url")
        else:
            raise ValueError(f"unsupported image source type: {source.get('type')!r}")
        return {"type": "image_url", "image_url": {"url": url}}
    if btype == "document" and source.get("type") == "base64":
        file_data = f"data:{source.get('media_type')};base64,{source.get('data')}"
        return {"type": "file", "file": {"file_data": file_data, "filename": block.get("title") or "document"}}
    raise ValueError(f"unsupported content block type: {btype!r}")


def _parts_to_openai_content(parts: list[dict]) -> str | list[dict]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _anthropic_user_to_openai(content: Any) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[dict] = []
    parts: list[dict] = []
    for block in content or []:
        if block.get("type") == "tool_result":
            # OpenAI tool messages carry text only; images inside tool results are dropped.
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id") or "",
                    "content": text_of(block.get("content")),
                }
            )
        else:
            parts.append(_anthropic_block_to_openai_part(block))
    if parts:
        messages.append({"role": "user", "content": _parts_to_openai_content(parts)})
    return messages


def _anthropic_assistant_to_openai(content: Any) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    tool_calls: list[dict] = []
    for block in content or []:
        btype = block.get("type")
        if btype == "text":
            texts.append(block.get("text") or "")
        elif btype == "tool_use":
            tool_calls.append(tool_use_to_tool_call(block))
        elif btype in ("thinking", "redacted_thinking"):
            continue  # OpenAI has no way to replay reasoning
        else:
            raise ValueError(f"unsupported assistant content block type: {btype!r}")
    text = "".join(texts)
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _anthropic_tools_to_openai(tools: list[dict]) -> list[dict]:
    converted = []
    for tool in tools:
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            raise ValueError(f"unsupported tool type: {tool.get('type')!r}")
        fn: dict = {"name": tool.get("name") or ""}
        if tool.get("description"):
            fn["description"] = tool["description"]
        fn["parameters"] = tool["input_schema"]
        converted.append({"type": "function", "function": fn})
    return converted


def _anthropic_tool_choice_to_openai(choice: dict) -> str | dict:
    ctype = choice.get("type")
    if ctype == "auto":
        return "auto"
    if ctype == "any":
        return "required"
    if ctype == "none":
        return "none"
    if ctype == "tool":
        return {"type": "function", "function": {"name": choice.get("name") or ""}}
    raise ValueError(f"unsupported tool_choice type: {ctype!r}")


def anthropic_to_openai_chat_request(body: dict) -> dict:
    """Anthropic /v1/messages body -> OpenAI chat.completions body."""
    messages: list[dict] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b.get("text") or "" for b in system)
        messages.append({"role": "system", "content": text})
    for msg in body.get("messages") or []:
        role = msg.get("role")
        if role == "user":
            messages.extend(_anthropic_user_to_openai(msg.get("content")))
        elif role == "assistant":
            messages.append(_anthropic_assistant_to_openai(msg.get("content")))
        else:
            raise ValueError(f"unsupported message role: {role!r}")

    out: dict = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        out["tools"] = _anthropic_tools_to_openai(body["tools"])
    choice = body.get("tool_choice")
    if choice:
        out["tool_choice"] = _anthropic_tool_choice_to_openai(choice)
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user_id = (body.get("metadata") or {}).get("user_id")
    if user_id:
        out["user"] = user_id
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


# --------------------------------------------------------------------------
# OpenAI response -> Anthropic response
# --------------------------------------------------------------------------


def _stop_reason(finish_reason: str | None, has_tool_use: bool) -> str:
    # Some OpenAI-compatible servers report "stop" alongside tool calls; Anthropic
    # clients only run their tool loop on "tool_use", so tool calls win.
    if has_tool_use and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _FINISH_TO_STOP_REASON.get(finish_reason or "", "end_turn")


def _openai_usage_to_anthropic(usage: dict | None) -> dict:
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int_or_zero(details.get("cached_tokens"))
    written = int_or_zero(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(int_or_zero(usage.get("prompt_tokens")) - cached - written, 0),
        "output_tokens": int_or_zero(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    }


def _loads_object(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _message_id(openai_id: str | None) -> str:
    if not openai_id:
        return new_id("msg_")
    return "msg_" + openai_id.removeprefix("chatcmpl-")


def openai_to_anthropic_response(resp: dict, model: str) -> dict:
    """OpenAI chat.completion (first choice) -> Anthropic Message."""
    choices = resp.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict] = []
    text = message.get("content") or message.get("refusal") or ""
    if isinstance(text, list):
        text = text_of(text)
    if text:
        content.append({"type": "text", "text": text})
    calls = list(message.get("tool_calls") or [])
    if message.get("function_call"):
        calls.append({"function": message["function_call"]})
    for call in calls:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": fn.get("name") or "",
                "input": _loads_object(fn.get("arguments")),
            }
        )
    return {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": _openai_usage_to_anthropic(resp.get("usage")),
    }


# --------------------------------------------------------------------------
# OpenAI stream -> Anthropic events
# --------------------------------------------------------------------------


class OpenAIToAnthropicStream:
    """Feed OpenAI chunk dicts, get ``(event, data)`` Anthropic SSE events."""

    def __init__(self, model: str, input_tokens_hint: int = 0) -> None:
        self.model = model
        self.input_tokens_hint = input_tokens_hint
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self._message_id: str | None = None
        self._started = False
        self._finished = False
        self._next_block = 0
        self._open: tuple[str, Any] | None = None  # ("text", None) or ("tool", openai tool index)
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool index -> Anthropic block index

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        if self._finished:
            return []
        events = self._start(chunk.get("id"))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # only the first choice is translated (n > 1 has no Anthropic equivalent)
            events += self._on_delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[tuple[str, dict]]:
        if self._finished:
            return []
        events = self._start(None) + self._close_block()
        self._finished = True
        usage = {"output_tokens": int_or_zero((self.usage or {}).get("completion_tokens"))}
        if self.usage:
            # message_start only had a hint; message_delta usage is cumulative and overrides it.
            full = _openai_usage_to_anthropic(self.usage)
            usage = {
                "input_tokens": full["input_tokens"],
                "cache_read_input_tokens": full["cache_read_input_tokens"],
                "output_tokens": full["output_tokens"],
            }
        stop_reason = _stop_reason(self.finish_reason, bool(self._tool_blocks))
        events.append(
            self._event("message_delta", delta={"stop_reason": stop_reason, "stop_sequence": None}, usage=usage)
        )
        events.append(self._event("message_stop"))
        return events

    @staticmethod
    def _event(name: str, **fields: Any) -> tuple[str, dict]:
        return name, {"type": name, **fields}

    def _start(self, openai_id: str | None) -> list[tuple[str, dict]]:
        if self._started:
            return []
        self._started = True
        self._message_id = _message_id(openai_id)
        message = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens_hint, "output_tokens": 0},
        }
        return [self._event("message_start", message=message)]

    def _open_block(self, kind: str, key: Any, content_block: dict) -> list[tuple[str, dict]]:
        events = self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open = (kind, key)
        if kind == "tool":
            self._tool_blocks[key] = index
        return events + [self._event("content_block_start", index=index, content_block=content_block)]

    def _close_block(self) -> list[tuple[str, dict]]:
        if self._open is None:
            return []
        self._open = None
        return [self._event("content_block_stop", index=self._next_block - 1)]

    def _on_delta(self, delta: dict) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        text = delta.get("content") or delta.get("refusal")
        if text:
            if self._open != ("text", None):
                events += self._open_block("text", None, {"type": "text", "text": ""})
            events.append(
                self._event(
                    "content_block_delta", index=self._next_block - 1, delta={"type": "text_delta", "text": text}
                )
            )
        for call in delta.get("tool_calls") or []:
            events += self._on_tool_call(call)
        return events

    def _on_tool_call(self, call: dict) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        key = call.get("index", 0)
        fn = call.get("function") or {}
        if key not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": fn.get("name") or "",
                "input": {},
            }
            events += self._open_block("tool", key, block)
        elif self._open != ("tool", key):
            # Anthropic blocks cannot be reopened, so interleaved argument streams are untranslatable.
            raise ValueError(f"arguments for tool call {key} arrived after its block was closed")
        if fn.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
            events.append(self._event("content_block_delta", index=self._tool_blocks[key], delta=delta))
        return events
