"""Relaying an upstream stream to the client as its chunks arrive.

The router hands over a `Streamed`: the first batch of chunks (already read, so
a failure before it could still fail over) and an iterator over the rest, each
batch the chunks that arrived together. Each batch is translated and written
in one go; nothing waits for more data. The client gets OpenAI's SSE chunks or,
for `/v1/messages`, Anthropic's events. The usage chunk is kept for
accounting; the call is settled before the stream's last bytes. An upstream
that breaks mid-stream is reported in-band and the stream ended.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from core import jsonfast
from core.errors import GatewayError, error_json_bytes
from gateway.anthropic_ingress import OpenAIToAnthropicStream, sse_event
from gateway.call import Call
from providers.adapters import UpstreamError, Usage
from providers.router import Streamed

logger = logging.getLogger("gateway.v1")

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class StreamRelay:
    def __init__(self, call: Call, send, completed: Callable[[list[bytes]], Awaitable[None]]) -> None:
        self.call = call
        self.send = send
        self.completed = completed  # called with every chunk of a stream that ended well (to cache it)

    async def openai(self, result: Streamed, wants_usage: bool) -> None:
        """OpenAI SSE out; keep the usage chunk for accounting and drop it when
        the client did not ask for it."""
        call = self.call

        def translate(chunk: bytes) -> bytes | None:
            if b'"usage"' in chunk:
                chunk = self.take_usage(chunk, wants_usage)
                if chunk is None:
                    return None
            if b'"content"' in chunk or b'"text"' in chunk:
                call.streamed_chunks += 1
            return b"data: " + chunk + b"\n\n"

        def error_event(error: UpstreamError) -> bytes:
            return b"data: " + error_json_bytes(GatewayError("upstream_error", error.message)) + b"\n\n"

        if await self.relay(result, translate, error_event):
            await call.finish()
            await self.send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    def take_usage(self, chunk: bytes, wants_usage: bool) -> bytes | None:
        data = jsonfast.loads(chunk)
        usage = Usage.from_openai(data.get("usage"))
        if usage is None:
            return chunk
        self.call.usage = usage
        if wants_usage:
            return chunk
        if not data.get("choices"):
            return None
        data["usage"] = None
        return jsonfast.dumps(data)

    async def anthropic(self, result: Streamed, model: str) -> None:
        """Anthropic SSE events out, translated from the OpenAI chunks."""
        call = self.call
        converter = OpenAIToAnthropicStream(model, input_tokens_hint=call.prompt_estimate)

        def translate(chunk: bytes) -> bytes | None:
            if b'"content"' in chunk:
                call.streamed_chunks += 1
            events = converter.feed(jsonfast.loads(chunk))
            return b"".join(sse_event(name, data) for name, data in events) if events else None

        def error_event(error: UpstreamError) -> bytes:
            return sse_event("error", {"type": "error", "error": {"type": "api_error", "message": error.message}})

        try:
            completed = await self.relay(result, translate, error_event)
        finally:
            call.usage = Usage.from_openai(converter.usage)
        if completed:
            await call.finish()
            closing = b"".join(sse_event(name, data) for name, data in converter.finish())
            await self.send({"type": "http.response.body", "body": closing})

    async def relay(self, result: Streamed, translate, error_event) -> bool:
        """Relay a stream as its chunks arrive, each through `translate` (bytes to
        send, or None), one write per batch. False when the upstream broke
        mid-stream (the client was told in-band with `error_event(error)`)."""
        await self.start()
        seen: list[bytes] = []
        try:
            batch = result.first
            while batch is not None:
                seen += batch
                out = b"".join([piece for piece in map(translate, batch) if piece])
                if out:
                    await self.write(out)
                batch = await anext(result.rest, None)
        except UpstreamError as error:
            await self.failed(error, error_event(error))
            return False
        finally:
            await result.rest.aclose()
        await self.completed(seen)
        return True

    async def start(self) -> None:
        call = self.call
        call.status = 200
        await self.send(
            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + call.response_headers()}
        )
        call.response_started = True

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def failed(self, error: UpstreamError, event: bytes) -> None:
        """The upstream broke mid-stream: tell the client in-band and end the stream."""
        logger.warning("Upstream failed mid-stream (request %s): %s", self.call.request_id, error.describe())
        self.call.status, self.call.error_code = 502, "upstream_error"
        await self.call.finish()
        await self.send({"type": "http.response.body", "body": event})
