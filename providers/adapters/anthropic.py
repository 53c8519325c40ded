"""Anthropic's Messages API behind the OpenAI chat format: the adapter, and the
translation it needs (OpenAI chat request -> Anthropic request; Anthropic
answer and stream events -> OpenAI chat completion and chunks).

The other direction, for clients that speak Anthropic's format to the gateway
(`POST /v1/messages`), is the gateway's own: gateway/anthropic_ingress.py.
Malformed input that cannot be translated raises ``ValueError`` (a 400).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from core import jsonfast
from providers.adapters.base import Adapter, ClientEndpoint, Reply, UpstreamError, Usage

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_STOP_REASON_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


# --------------------------------------------------------------------------
# Helpers (also used by the gateway's Anthropic ingress)
# --------------------------------------------------------------------------


def int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) else 0


def text_of(content: Any) -> str:
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


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


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
    return {"type": "tool_use", "id": call.get("id") or new_id("toolu_"), "name": fn.get("name") or "", "input": args}


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
            "content": text_of(msg.get("content")),
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
            text = text_of(msg.get("content"))
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
    """Anthropic usage -> OpenAI usage: cache reads and writes count as prompt
    tokens, and are kept apart in prompt_tokens_details (`cache_write_tokens` is
    the gateway's own field: OpenAI has no cache writes) so each is billed at its price."""
    usage = usage or {}
    cache_read = int_or_zero(usage.get("cache_read_input_tokens"))
    cache_write = int_or_zero(usage.get("cache_creation_input_tokens"))
    prompt = int_or_zero(usage.get("input_tokens")) + cache_read + cache_write
    completion = int_or_zero(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }


def _finish_reason(stop_reason: str | None) -> str:
    return _STOP_REASON_TO_FINISH.get(stop_reason or "", "stop")


def tool_use_to_tool_call(block: dict) -> dict:
    return {
        "id": block.get("id") or new_id("call_"),
        "type": "function",
        "function": {"name": block.get("name") or "", "arguments": json.dumps(block.get("input") or {})},
    }


def anthropic_to_openai_chat_response(resp: dict, model: str) -> dict:
    """Anthropic Message -> OpenAI chat.completion."""
    blocks = resp.get("content") or []
    text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
    tool_calls = [tool_use_to_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
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
            "id": block.get("id") or new_id("call_"),
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
# The adapter
# --------------------------------------------------------------------------


class AnthropicAdapter(Adapter):
    wire = "anthropic"
    models_path = "/v1/models"

    def headers(self) -> dict[str, str]:
        headers = {**super().headers(), "anthropic-version": ANTHROPIC_VERSION}
        if self.upstream.api_key:
            headers["x-api-key"] = self.upstream.api_key
        return headers

    def payload(self, body: dict, model: str, stream: bool) -> bytes:
        try:
            payload = openai_chat_to_anthropic(body, model)
        except ValueError as exc:
            # Untranslatable input is the client's: a 400, not a provider failure.
            raise UpstreamError(str(exc), kind="status", status=400) from None
        payload["stream"] = stream
        return jsonfast.dumps(payload)

    async def request(self, endpoint: ClientEndpoint, body: dict, model: str) -> Reply:
        data = await self.post_json(self.path(endpoint), self.payload(body, model, stream=False))
        data = anthropic_to_openai_chat_response(data, model)
        return Reply(data, Usage.from_openai(data.get("usage")))

    async def stream(self, endpoint: ClientEndpoint, body: dict, model: str) -> AsyncIterator[list[bytes]]:
        converter = AnthropicToOpenAIStream(model, include_usage=True)
        batches = self.post_stream(self.path(endpoint), self.payload(body, model, stream=True))
        try:
            async for events in batches:
                out = []
                for event, data in events:
                    try:
                        chunks = converter.feed(event or "", jsonfast.loads(data))
                    except AnthropicStreamError as exc:
                        raise UpstreamError(
                            self.scrub(f"{self.upstream.name}: {exc}"), kind="status", status=502
                        ) from None
                    except ValueError:
                        raise UpstreamError(f"{self.upstream.name}: malformed stream event", kind="invalid") from None
                    out.extend(jsonfast.dumps(chunk) for chunk in chunks)
                if out:
                    yield out
        finally:
            await batches.aclose()
