"""Translation between OpenAI Chat Completions and Anthropic Messages formats.

Pure functions and small stateful stream converters; no I/O, no Django.
Malformed input that cannot be translated raises ``ValueError`` so the
caller can answer with a 400.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

__all__ = [
    "AnthropicStreamError",
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "anthropic_to_openai_chat_request",
    "anthropic_to_openai_chat_response",
    "anthropic_usage_to_openai",
    "openai_chat_to_anthropic",
    "openai_to_anthropic_response",
    "sse_event",
]

DEFAULT_MAX_TOKENS = 4096

_STOP_REASON_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

_FINISH_TO_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _text_of(content: Any) -> str:
    """Text of a string or a list of text parts/blocks (other parts ignored)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError(f"unsupported content value of type {type(content).__name__}")


def _parse_data_url(url: str) -> tuple[str, str]:
    """Split ``data:<media>;base64,<data>`` into (media_type, data)."""
    header, sep, data = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ValueError("only base64 data URLs are supported")
    return header[len("data:") : -len(";base64")], data


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def sse_event(event: str, data: dict) -> bytes:
    """Serialise one Anthropic-style server-sent event."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


# --------------------------------------------------------------------------
# OpenAI request -> Anthropic request
# --------------------------------------------------------------------------


def _openai_part_to_block(part: dict) -> dict | None:
    ptype = part.get("type")
    if ptype == "text":
        text = part.get("text") or ""
        if not text:
            return None  # Anthropic rejects empty text blocks
        block: dict = {"type": "text", "text": text}
    elif ptype == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise ValueError("image_url part without url")
        if url.startswith("data:"):
            media_type, data = _parse_data_url(url)
            block = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        else:
            block = {"type": "image", "source": {"type": "url", "url": url}}
    elif ptype == "file":
        file_data = (part.get("file") or {}).get("file_data")
        if not isinstance(file_data, str) or not file_data.startswith("data:"):
            raise ValueError("file parts need inline base64 file_data")
        media_type, data = _parse_data_url(file_data)
        block = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    else:
        raise ValueError(f"unsupported content part type: {ptype!r}")
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _openai_content_to_blocks(content: Any) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ValueError("message content must be a string or a list of parts")
    blocks = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "refusal":
            continue
        block = _openai_part_to_block(part)
        if block is not None:
            blocks.append(block)
    return blocks


def _tool_call_to_tool_use(call: dict) -> dict:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool call {call.get('id')!r} has invalid JSON arguments") from exc
    if not isinstance(args, dict):
        raise ValueError(f"tool call {call.get('id')!r} arguments must be a JSON object")
    return {"type": "tool_use", "id": call.get("id") or _new_id("toolu_"), "name": fn.get("name") or "", "input": args}


def _openai_message_to_turn(msg: dict) -> tuple[str, list[dict]]:
    role = msg.get("role")
    if role == "user":
        return "user", _openai_content_to_blocks(msg.get("content"))
    if role == "assistant":
        blocks = _openai_content_to_blocks(msg.get("content"))
        blocks += [_tool_call_to_tool_use(c) for c in msg.get("tool_calls") or []]
        return "assistant", blocks
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": msg.get("tool_call_id") or "",
            "content": _text_of(msg.get("content")),
        }
        return "user", [result]
    raise ValueError(f"unsupported message role: {role!r}")


def _tool_results_first(blocks: list[dict]) -> list[dict]:
    # Anthropic requires tool_result blocks to precede any other content of the user turn.
    results = [b for b in blocks if b.get("type") == "tool_result"]
    return results + [b for b in blocks if b.get("type") != "tool_result"]


def _openai_messages_to_anthropic(messages: list[dict]) -> tuple[str, list[dict]]:
    system_parts: list[str] = []
    turns: list[dict] = []
    for msg in messages:
        if msg.get("role") in ("system", "developer"):
            text = _text_of(msg.get("content"))
            if text:
                system_parts.append(text)
            continue
        role, blocks = _openai_message_to_turn(msg)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic requires alternating roles
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = _tool_results_first(turn["content"])
    return "\n\n".join(system_parts), turns


def _openai_tools_to_anthropic(tools: list[dict]) -> list[dict]:
    converted = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            raise ValueError(f"unsupported tool type: {tool.get('type')!r}")
        fn = tool.get("function") or {}
        out: dict = {"name": fn.get("name") or ""}
        if fn.get("description"):
            out["description"] = fn["description"]
        out["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
        converted.append(out)
    return converted


def _openai_tool_choice_to_anthropic(choice: Any, parallel_tool_calls: Any) -> dict:
    if choice is None or choice == "auto":
        result: dict = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        result = {"type": "tool", "name": (choice.get("function") or {}).get("name") or ""}
    else:
        raise ValueError(f"unsupported tool_choice: {choice!r}")
    if parallel_tool_calls is False:
        result["disable_parallel_tool_use"] = True
    return result


def openai_chat_to_anthropic(body: dict, upstream_model: str) -> dict:
    """OpenAI chat.completions request body -> Anthropic /v1/messages body."""
    system, messages = _openai_messages_to_anthropic(body.get("messages") or [])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    out: dict = {"model": upstream_model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = system
    if body.get("tools"):
        out["tools"] = _openai_tools_to_anthropic(body["tools"])
        out["tool_choice"] = _openai_tool_choice_to_anthropic(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if body.get("temperature") is not None:
        out["temperature"] = min(body["temperature"], 1)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if "stream" in body and body["stream"] is not None:
        out["stream"] = bool(body["stream"])
    return out


# --------------------------------------------------------------------------
# Anthropic response -> OpenAI response
# --------------------------------------------------------------------------


def anthropic_usage_to_openai(usage: dict | None) -> dict:
    """Anthropic usage -> OpenAI usage; cached input counts as prompt tokens."""
    usage = usage or {}
    cache_read = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + cache_read + _int(usage.get("cache_creation_input_tokens"))
    completion = _int(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def _finish_reason(stop_reason: str | None) -> str:
    return _STOP_REASON_TO_FINISH.get(stop_reason or "", "stop")


def _tool_use_to_tool_call(block: dict) -> dict:
    return {
        "id": block.get("id") or _new_id("call_"),
        "type": "function",
        "function": {"name": block.get("name") or "", "arguments": json.dumps(block.get("input") or {})},
    }


def anthropic_to_openai_chat_response(resp: dict, model: str) -> dict:
    """Anthropic Message -> OpenAI chat.completion."""
    blocks = resp.get("content") or []
    text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
    tool_calls = [_tool_use_to_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    message: dict = {"role": "assistant", "content": text if text or not tool_calls else None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-" + (resp.get("id") or uuid.uuid4().hex),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(resp.get("stop_reason")), "logprobs": None}
        ],
        "usage": anthropic_usage_to_openai(resp.get("usage")),
    }


# --------------------------------------------------------------------------
# Anthropic stream -> OpenAI chunks
# --------------------------------------------------------------------------


class AnthropicStreamError(Exception):
    """An ``error`` event arrived in an Anthropic stream; ``data`` is its payload."""

    def __init__(self, data: dict) -> None:
        self.data = data
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(message or "Anthropic stream error")

    @property
    def error_type(self) -> str | None:
        error = self.data.get("error") if isinstance(self.data, dict) else None
        return error.get("type") if isinstance(error, dict) else None


class AnthropicToOpenAIStream:
    """Feed Anthropic SSE events, get OpenAI ``chat.completion.chunk`` dicts."""

    def __init__(self, model: str, include_usage: bool = True) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.finish_reason: str | None = None
        self._raw_usage: dict = {}
        self.usage: dict = anthropic_usage_to_openai({})
        self._emitted = False
        self._tool_index_by_block: dict[int, int] = {}

    def feed(self, event: str, data: dict) -> list[dict]:
        handler = getattr(self, "_on_" + event, None)
        return handler(data) if handler else []

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        self._emitted = True
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def _update_usage(self, usage: dict | None) -> None:
        for key, value in (usage or {}).items():
            if isinstance(value, int):
                self._raw_usage[key] = value
        self.usage = anthropic_usage_to_openai(self._raw_usage)

    def _on_message_start(self, data: dict) -> list[dict]:
        message = data.get("message") or {}
        if message.get("id") and not self._emitted:
            self.id = "chatcmpl-" + message["id"]
        self._update_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: dict) -> list[dict]:
        block = data.get("content_block") or {}
        if block.get("type") != "tool_use":
            return []
        tool_index = len(self._tool_index_by_block)
        self._tool_index_by_block[data.get("index", 0)] = tool_index
        call = {
            "index": tool_index,
            "id": block.get("id") or _new_id("call_"),
            "type": "function",
            "function": {"name": block.get("name") or "", "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_content_block_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if dtype == "input_json_delta" and delta.get("partial_json"):
            tool_index = self._tool_index_by_block.get(data.get("index", 0))
            if tool_index is None:
                return []  # e.g. server tool input, which has no OpenAI counterpart
            call = {"index": tool_index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _on_message_delta(self, data: dict) -> list[dict]:
        self._update_usage(data.get("usage"))
        self.finish_reason = _finish_reason((data.get("delta") or {}).get("stop_reason"))
        return [self._chunk({}, self.finish_reason)]

    def _on_message_stop(self, data: dict) -> list[dict]:
        if not self.include_usage:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage
        return [chunk]

    def _on_error(self, data: dict) -> list[dict]:
        raise AnthropicStreamError(data)


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
                    "content": _text_of(block.get("content")),
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
            tool_calls.append(_tool_use_to_tool_call(block))
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
    cached = _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
    return {
        "input_tokens": max(_int(usage.get("prompt_tokens")) - cached, 0),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _loads_object(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _message_id(openai_id: str | None) -> str:
    if not openai_id:
        return _new_id("msg_")
    return "msg_" + openai_id.removeprefix("chatcmpl-")


def openai_to_anthropic_response(resp: dict, model: str) -> dict:
    """OpenAI chat.completion (first choice) -> Anthropic Message."""
    choices = resp.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict] = []
    text = message.get("content") or message.get("refusal") or ""
    if isinstance(text, list):
        text = _text_of(text)
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
                "id": call.get("id") or _new_id("toolu_"),
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
        usage = {"output_tokens": _int((self.usage or {}).get("completion_tokens"))}
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
                "id": call.get("id") or _new_id("toolu_"),
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
