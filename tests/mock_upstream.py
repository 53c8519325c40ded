"""A real HTTP mock of OpenAI-compatible and Anthropic upstreams, bound to 127.0.0.1.

Usage::

    with MockUpstream() as mock:
        mock.push(status(429, headers={"Retry-After": "0"}))
        ...  # point the gateway at mock.openai_base / mock.url
        assert mock.last_request.json["model"] == "gpt-4o"

or via the ``mock_upstream`` pytest fixture defined at the bottom of this module.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import socketserver
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

HOST = "127.0.0.1"
DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
TOOL_ARGUMENTS = '{"location": "Paris"}'
EMBEDDING_DIMS = 8
MAX_HANG_SECONDS = 120.0
MAX_BODY_BYTES = 32 * 1024 * 1024
CREATED = 1_700_000_000


# --------------------------------------------------------------------------- behaviours


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "status" | "hang" | "garbage" | "slow_stream" | "drop"
    code: int = 200
    body: Any = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0


def status(code: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Behaviour:
    """Answer with `code` and a JSON body (OpenAI error shape unless `body` is given)."""
    return Behaviour("status", code=code, body=body, headers=headers)


def hang(seconds: float) -> Behaviour:
    """Sleep up to `seconds` (cut short by stop()) before answering normally."""
    return Behaviour("hang", seconds=min(max(float(seconds), 0.0), MAX_HANG_SECONDS))


def garbage() -> Behaviour:
    """200 with a JSON content type but a non-JSON body."""
    return Behaviour("garbage")


def slow_stream(delay: float) -> Behaviour:
    """Normal answer, but sleep `delay` seconds before each SSE event of a stream."""
    return Behaviour("slow_stream", seconds=min(max(float(delay), 0.0), MAX_HANG_SECONDS))


def drop() -> Behaviour:
    """Close the connection without sending any response."""
    return Behaviour("drop")


_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    529: ("overloaded_error", "overloaded"),
}


def openai_error_body(code: int, message: str | None = None) -> dict[str, Any]:
    err_type, err_code = _ERROR_TYPES.get(code, ("server_error" if code >= 500 else "invalid_request_error", str(code)))
    text = message or f"mock upstream error {code}"
    return {"error": {"message": text, "type": err_type, "param": None, "code": err_code}}


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_body(code: int, message: str | None = None) -> dict[str, Any]:
    """Convenience for `status(code, body=anthropic_error_body(code))` on /v1/messages."""
    err_type = _ANTHROPIC_ERROR_TYPES.get(code, "api_error" if code >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": err_type, "message": message or f"mock upstream error {code}"}}


# --------------------------------------------------------------------------- recording


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (last value wins for duplicates)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = list(items)
        self._lower = {k.lower(): v for k, v in items}

    def __getitem__(self, key: str) -> str:
        return self._lower[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._lower)

    def __len__(self) -> int:
        return len(self._lower)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class RecordedRequest:
    method: str
    path: str  # without query string
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any  # parsed body, or None if absent / not JSON
    behaviour: str = "normal"
    client: tuple[str, int] = (HOST, 0)  # peer address; equal ports => same keep-alive connection
    received_at: float = field(default_factory=time.monotonic)

    def __getitem__(self, key: str) -> Any:
        # Lets tests treat a request like a dict: req["json"]["model"].
        return getattr(self, key)


# --------------------------------------------------------------------------- response builders


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")]
        return " ".join(p for p in parts if p)
    return ""


def _last_user_text(messages: Any) -> str:
    for msg in reversed(messages if isinstance(messages, list) else []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            text = _text_of(msg.get("content"))
            if text:
                return text
    return ""


def _reply_text(user_text: str) -> str:
    return f"mock: {user_text}" if user_text else "Hello from mock"


def _count_words(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).split()) if value is not None else 0


def _word_pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _argument_pieces(arguments: str) -> list[str]:
    third = max(len(arguments) // 3, 1)
    return [arguments[i : i + third] for i in range(0, len(arguments), third)]


def _openai_tool_name(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        return str(choice["function"]["name"])
    first = tools[0] if isinstance(tools[0], dict) else {}
    return str((first.get("function") or {}).get("name") or first.get("name") or "tool")


def _anthropic_tool_name(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    content = last.get("content")
    if last.get("role") == "user" and isinstance(content, list):
        if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return None
    if isinstance(choice, dict) and choice.get("type") == "tool" and choice.get("name"):
        return str(choice["name"])
    return str(tools[0].get("name") or "tool") if isinstance(tools[0], dict) else "tool"


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chat_completion(body: dict[str, Any], rid: str) -> dict[str, Any]:
    model = body.get("model") or "mock-model"
    prompt_tokens = _count_words(body.get("messages"))
    tool = _openai_tool_name(body)
    if tool:
        call = {"id": f"call_{rid}", "type": "function", "function": {"name": tool, "arguments": TOOL_ARGUMENTS}}
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        finish, completion_tokens = "tool_calls", 5
    else:
        text = _reply_text(_last_user_text(body.get("messages")))
        message = {"role": "assistant", "content": text, "refusal": None}
        finish, completion_tokens = "stop", len(text.split())
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(prompt_tokens, completion_tokens),
        "system_fingerprint": "fp_mock",
    }


def _chat_stream_events(body: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    full = _chat_completion(body, rid)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": full["id"],
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": full["model"],
        "system_fingerprint": "fp_mock",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    message = full["choices"][0]["message"]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        events = [chunk({"role": "assistant", "content": None})]
        name = call["function"]["name"]
        first = {"index": 0, "id": call["id"], "type": "function", "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [first]}))
        for piece in _argument_pieces(TOOL_ARGUMENTS):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    else:
        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": p}) for p in _word_pieces(message["content"])]
    events.append(chunk({}, full["choices"][0]["finish_reason"]))
    if include_usage:
        events.append({**base, "choices": [], "usage": full["usage"]})
    return events


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0]
    return prompt if isinstance(prompt, str) else ""


def _completion(body: dict[str, Any], rid: str) -> dict[str, Any]:
    text = _reply_text(_prompt_text(body.get("prompt")))
    return {
        "id": f"cmpl-{rid}",
        "object": "text_completion",
        "created": CREATED,
        "model": body.get("model") or "mock-model",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(_count_words(body.get("prompt")), len(text.split())),
    }


def _completion_stream_events(body: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    full = _completion(body, rid)
    base = {k: full[k] for k in ("id", "object", "created", "model")}

    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        return {**base, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}

    events = [chunk(p, None) for p in _word_pieces(full["choices"][0]["text"])]
    events.append(chunk("", "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append({**base, "choices": [], "usage": full["usage"]})
    return events


def _embedding_inputs(raw: Any) -> list[Any]:
    # A flat list of ints is ONE tokenised input; any other list is a batch.
    if isinstance(raw, list) and raw and not all(isinstance(x, int) for x in raw):
        return list(raw)
    return [raw]


def _vector(value: Any) -> list[float]:
    digest = hashlib.sha256(json.dumps(value).encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:EMBEDDING_DIMS]]


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, item in enumerate(_embedding_inputs(body.get("input"))):
        vec: Any = _vector(item)
        if as_base64:
            # The openai SDK asks for base64 by default and decodes float32 little-endian.
            vec = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vec})
    tokens = _count_words(body.get("input"))
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or "mock-embedding",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# A 1x1 transparent PNG.
_PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def _images(body: dict[str, Any], base_url: str) -> dict[str, Any]:
    count = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
    if body.get("response_format") == "b64_json":
        item = {"b64_json": _PNG_B64}
    else:
        item = {"url": f"{base_url}/mock-image.png"}
    item["revised_prompt"] = str(body.get("prompt") or "")
    return {"created": CREATED, "data": [dict(item) for _ in range(min(count, 10))]}


def _model_object(model: Any) -> dict[str, Any]:
    if isinstance(model, dict):
        return {"object": "model", "created": CREATED, "owned_by": "mock", **model}
    return {"id": str(model), "object": "model", "created": CREATED, "owned_by": "mock"}


def _anthropic_message(body: dict[str, Any], rid: str) -> dict[str, Any]:
    tool = _anthropic_tool_name(body)
    if tool:
        block = {"type": "tool_use", "id": f"toolu_{rid}", "name": tool, "input": json.loads(TOOL_ARGUMENTS)}
        content: list[dict[str, Any]] = [block]
        stop_reason, output_tokens = "tool_use", 5
    else:
        text = _reply_text(_last_user_text(body.get("messages")))
        content, stop_reason, output_tokens = [{"type": "text", "text": text}], "end_turn", len(text.split())
    return {
        "id": f"msg_{rid}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model") or "mock-claude",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": _count_words(body.get("messages")) + _count_words(body.get("system")),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _anthropic_stream_events(body: dict[str, Any], rid: str) -> list[tuple[str, dict[str, Any]]]:
    full = _anthropic_message(body, rid)
    start_usage = {**full["usage"], "output_tokens": 1}
    start = {**full, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    block = full["content"][0]
    if block["type"] == "tool_use":
        opening = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in _argument_pieces(TOOL_ARGUMENTS)]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _word_pieces(block["text"])]
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": opening}),
        ("ping", {"type": "ping"}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": full["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": full["usage"]["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    mock: MockUpstream

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse-DNS getfqdn() that can stall in sandboxes.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response is an expected part of failure tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MockUpstream/1.0"
    timeout = 30  # idle keep-alive connections end on their own
    server: _Server
    _rid = "mock0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.mock._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.mock._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- request side

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY_BYTES)) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        out = bytearray()
        for _ in range(100_000):
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self._skip_trailers()
                break
            out += self.rfile.read(size)
            self.rfile.readline(1024)
            if len(out) > MAX_BODY_BYTES:
                break
        return bytes(out)

    def _skip_trailers(self) -> None:
        for _ in range(100):
            if self.rfile.readline(1024) in (b"\r\n", b"\n", b""):
                return

    def _dispatch(self) -> None:
        mock = self.server.mock
        raw = self._read_body()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        split = urlsplit(self.path)
        behaviour = mock._next_behaviour()
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query),
            headers=Headers(list(self.headers.items())),
            body=raw,
            json=parsed,
            behaviour=behaviour.kind if behaviour else "normal",
            client=(str(self.client_address[0]), int(self.client_address[1])),
        )
        rid = self._rid = mock._record(request)
        try:
            self._apply(behaviour, request, rid)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _apply(self, behaviour: Behaviour | None, request: RecordedRequest, rid: str) -> None:
        kind = behaviour.kind if behaviour else "normal"
        if kind == "drop":
            self._drop()
        elif kind == "status":
            assert behaviour is not None
            body = behaviour.body if behaviour.body is not None else openai_error_body(behaviour.code)
            self._send_json(behaviour.code, body, behaviour.headers)
        elif kind == "garbage":
            self._send_bytes(200, b"<<<not json>>>", "application/json")
        else:
            if kind == "hang":
                assert behaviour is not None
                if self.server.mock._sleep(behaviour.seconds):
                    self._drop()  # stop() was called mid-hang
                    return
            delay = behaviour.seconds if behaviour and kind == "slow_stream" else 0.0
            self._route(request, rid, delay)

    def _route(self, request: RecordedRequest, rid: str, delay: float) -> None:
        mock, path, body = self.server.mock, request.path.rstrip("/"), request.json
        if request.method == "GET" and path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [_model_object(m) for m in mock.models]})
        elif request.method == "GET" and path.startswith("/v1/models/"):
            self._model_detail(path.removeprefix("/v1/models/"))
        elif request.method == "GET" and path == "/mock-image.png":
            self._send_bytes(200, base64.b64decode(_PNG_B64), "image/png")
        elif request.method != "POST" or path not in _POST_ROUTES:
            self._send_json(404, openai_error_body(404, f"mock upstream: no route for {request.method} {request.path}"))
        elif not isinstance(body, dict):
            self._send_json(400, openai_error_body(400, "mock upstream: body must be a JSON object"))
        else:
            self._post(path, body, rid, delay)

    def _model_detail(self, model_id: str) -> None:
        for model in self.server.mock.models:
            obj = _model_object(model)
            if obj["id"] == model_id:
                self._send_json(200, obj)
                return
        self._send_json(404, openai_error_body(404, f"The model '{model_id}' does not exist"))

    def _post(self, path: str, body: dict[str, Any], rid: str, delay: float) -> None:
        stream = body.get("stream") is True
        if path == "/v1/chat/completions":
            if stream:
                self._send_sse([(None, e) for e in _chat_stream_events(body, rid)], delay, done=True)
            else:
                self._send_json(200, _chat_completion(body, rid))
        elif path == "/v1/completions":
            if stream:
                self._send_sse([(None, e) for e in _completion_stream_events(body, rid)], delay, done=True)
            else:
                self._send_json(200, _completion(body, rid))
        elif path == "/v1/embeddings":
            self._send_json(200, _embeddings(body))
        elif path == "/v1/images/generations":
            self._send_json(200, _images(body, self.server.mock.url))
        elif path == "/v1/messages/count_tokens":
            tokens = _count_words(body.get("messages")) + _count_words(body.get("system"))
            self._send_json(200, {"input_tokens": tokens})
        elif stream:
            self._send_sse(list(_anthropic_stream_events(body, rid)), delay, done=False)
        else:
            self._send_json(200, _anthropic_message(body, rid))

    # -- response side

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_json(self, code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(code, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(self, code: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self._send_extra_headers(headers)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_extra_headers(self, headers: Mapping[str, str] | None) -> None:
        self.send_header("x-request-id", f"req_{self._rid}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)

    def _send_sse(self, events: list[tuple[str | None, dict[str, Any]]], delay: float, *, done: bool) -> None:
        mock = self.server.mock
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self._send_extra_headers(None)
        self.end_headers()
        self.wfile.flush()
        payloads = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
        if done:
            payloads.append("data: [DONE]\n\n")
        for payload in payloads:
            if delay and mock._sleep(delay):
                self._drop()
                return
            # Counted before the write: a fast client may read the event before this thread runs on.
            mock._event_sent()
            self._write_chunk(payload.encode())
        self._write_chunk(b"")
        mock.stream_done.set()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


_POST_ROUTES = {
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/messages",
    "/v1/messages/count_tokens",
}


# --------------------------------------------------------------------------- public class


class MockUpstream:
    """Threaded HTTP/1.1 mock upstream on 127.0.0.1 with an ephemeral port; starts on construction."""

    def __init__(self, models: list[Any] | None = None) -> None:
        self.models: list[Any] = list(models if models is not None else DEFAULT_MODELS)
        self.first_chunk_sent = threading.Event()
        self.stream_done = threading.Event()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._default: Behaviour | None = None
        self._events_sent = 0
        self._ids = itertools.count(1)
        self._connections: set[socket.socket] = set()
        self._server = _Server((HOST, 0), _Handler)
        self._server.mock = self
        self.port: int = self._server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self.openai_base = f"{self.url}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mock-upstream-{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- lifecycle

    def __enter__(self) -> MockUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()  # wakes hang()/slow_stream() sleepers
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)

    def reset(self) -> None:
        """Forget recorded requests, queued behaviours, the default behaviour, counters and events."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._default = None
            self._events_sent = 0
        self.first_chunk_sent.clear()
        self.stream_done.clear()

    # -- behaviours

    def push(self, behaviour: Behaviour, count: int = 1) -> None:
        with self._lock:
            self._queue.extend([behaviour] * count)

    def set_default(self, behaviour: Behaviour | None) -> None:
        with self._lock:
            self._default = behaviour

    def _next_behaviour(self) -> Behaviour | None:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default

    # -- recording

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def stream_events_sent(self) -> int:
        """SSE events handed to the socket (including `data: [DONE]`) since start/reset, across all requests."""
        with self._lock:
            return self._events_sent

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + min(timeout, MAX_HANG_SECONDS)
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return True
            time.sleep(0.01)
        return len(self.requests) >= count

    def _record(self, request: RecordedRequest) -> str:
        with self._lock:
            self._requests.append(request)
            return f"mock{next(self._ids):04d}"

    def _event_sent(self) -> None:
        with self._lock:
            self._events_sent += 1
        self.first_chunk_sent.set()

    def _sleep(self, seconds: float) -> bool:
        """Bounded sleep; returns True if stop() interrupted it."""
        return self._stopping.wait(min(seconds, MAX_HANG_SECONDS))

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


@pytest.fixture
def mock_upstream() -> Iterator[MockUpstream]:
    mock = MockUpstream()
    try:
        yield mock
    finally:
        mock.stop()
