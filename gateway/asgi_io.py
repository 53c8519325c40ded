"""Small helpers for the raw ASGI side of the /v1 path."""

from __future__ import annotations

from core.errors import GatewayError, error_json_bytes

JSON_HEADERS = [(b"content-type", b"application/json")]


async def read_body(receive, limit: int) -> bytes:
    """The whole request body, refusing more than `limit` bytes (413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError("request_too_large", f"Request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_bytes(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send, err: GatewayError, headers: list[tuple[bytes, bytes]] | None = None, *, anthropic: bool = False
) -> None:
    extra = [(name.lower().encode(), str(value).encode()) for name, value in err.headers.items()]
    await send_bytes(send, err.status, error_json_bytes(err, anthropic), JSON_HEADERS + extra + (headers or []))
