"""The pooled upstream transport (core/upstream_transport.py), against a raw asyncio TCP
server on 127.0.0.1 whose every byte each test controls."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import subprocess
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from core import upstream_transport
from core.upstream_transport import RequestTarget, UpstreamTransport

WAIT = 2.0  # the longest any single wait in these tests may take
TIMEOUT = {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def response(body: bytes = b"ok", status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# --- the server -----------------------------------------------------------------


class Received:
    """One request as the server read it off the wire."""

    def __init__(self, head: bytes, body: bytes, connection: int) -> None:
        self.head = head
        self.body = body
        self.connection = connection  # index of the connection it came on
        lines = head[:-4].decode("latin-1").split("\r\n")
        self.method, self.target, self.version = lines[0].split(" ", 2)
        self.headers = [(name, value.strip()) for name, value in (line.split(":", 1) for line in lines[1:])]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


class Peer:
    """One accepted connection, as the server sees it."""

    def __init__(self, server: Upstream, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.index = index
        self.reader = reader
        self.writer = writer
        self.eof = asyncio.Event()  # the client closed the connection
        self.closed = asyncio.Event()  # the server closed it

    async def read_request(self) -> Received | None:
        """The next request on this connection, or None once the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.set()
            return None
        request = Received(head, b"", self.index)
        if (length := request.header("content-length")) is not None:
            request.body = await self.reader.readexactly(int(length))
        elif "chunked" in (request.header("transfer-encoding") or "").lower():
            request.body = await self._read_chunked()
        self.server.requests.append(request)
        return request

    async def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return body
            body += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_eof(self) -> None:
        """Stall: discard whatever the client sends until it closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.eof.set()


Handler = Callable[[Peer], Awaitable[None]]


class Upstream:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.peers: list[Peer] = []
        self.requests: list[Received] = []
        self.errors: list[BaseException] = []
        self.tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def connections(self) -> int:
        return len(self.peers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        peer = Peer(self, len(self.peers), reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            peer.eof.set()
        except asyncio.CancelledError:
            pass  # stop(): the test is over
        except Exception as exc:
            self.errors.append(exc)
        finally:
            writer.close()
            peer.closed.set()

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


def keep_alive(*responses: bytes) -> Handler:
    """Answer the requests on each connection with `responses` in turn (the last
    one repeating; b"ok" if none), keeping it open until the client closes it."""
    responses = responses or (response(b"ok"),)

    async def handler(peer: Peer) -> None:
        n = 0
        while await peer.read_request() is not None:
            await peer.send(responses[min(n, len(responses) - 1)])
            n += 1

    return handler


def per_connection(*handlers: Handler) -> Handler:
    """The first connection served by the first handler, the second by the second...
    (the last one serving all the rest)."""

    async def handler(peer: Peer) -> None:
        await handlers[min(peer.index, len(handlers) - 1)](peer)

    return handler


def answer_once(data: bytes, then: str = "close") -> Handler:
    """Read one request, write `data`, then close (`then="close"`) or stall until the client closes."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(data)
        if then == "stall":
            await peer.wait_eof()

    return handler


async def stall(peer: Peer) -> None:
    """Read the request, never answer."""
    await peer.read_request()
    await peer.wait_eof()


# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
async def serve():
    servers: list[Upstream] = []

    async def start(handler: Handler) -> Upstream:
        server = Upstream(handler)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
    assert not [error for server in servers for error in server.errors], "a test server handler failed"


@pytest.fixture
async def pool():
    """Makes UpstreamTransports, closed after the test."""
    transports: list[UpstreamTransport] = []

    def make(**kwargs) -> UpstreamTransport:
        transports.append(UpstreamTransport(**kwargs))
        return transports[-1]

    yield make
    for transport in transports:
        await transport.aclose()


@pytest.fixture
def transport(pool) -> UpstreamTransport:
    return pool()


def build(url: str, method: str = "POST", content=None, headers=None, **timeout: float) -> httpx.Request:
    return httpx.Request(method, url, content=content, headers=headers, extensions={"timeout": TIMEOUT | timeout})


async def send(t: UpstreamTransport, url: str, **kwargs) -> httpx.Response:
    return await asyncio.wait_for(t.handle_async_request(build(url, **kwargs)), WAIT)


async def read(response: httpx.Response) -> bytes:
    return await asyncio.wait_for(response.aread(), WAIT)


async def fetch(t: UpstreamTransport, url: str, **kwargs) -> tuple[httpx.Response, bytes]:
    response = await send(t, url, **kwargs)
    return response, await read(response)


async def rest(parts) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [part async for part in parts]

    return await asyncio.wait_for(collect(), WAIT)


async def eventually(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def closed_by_client(peer: Peer) -> None:
    await asyncio.wait_for(peer.eof.wait(), WAIT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- a request and its response -------------------------------------------------------


async def test_content_length_response_and_the_request_exactly_as_sent(serve, transport):
    body = b'{"id": "chatcmpl-1", "ok": true}'
    headers = ("Content-Type: application/json", "X-Request-ID: abc-123", "Set-Cookie: a=1", "Set-Cookie: b=2")
    server = await serve(keep_alive(response(body, headers=headers)))
    sent = b'{"model": "m", "messages": []}'
    request_headers = {"Authorization": "Bearer sk-test", "X-Custom-Header": "Some Value"}

    response_, received_body = await fetch(
        transport, server.url("/v1/chat/completions?api-version=2024-06&q=a%20b"), content=sent, headers=request_headers
    )

    assert response_.status_code == 200
    assert response_.http_version == "HTTP/1.1"
    assert received_body == body
    assert response_.headers["content-type"] == "application/json"
    assert response_.headers["X-REQUEST-ID"] == "abc-123"
    assert response_.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert (b"X-Request-ID", b"abc-123") in response_.headers.raw  # the upstream's spelling kept
    assert response_.headers["content-length"] == str(len(body))

    [request] = server.requests
    assert request.method == "POST"
    assert request.target == "/v1/chat/completions?api-version=2024-06&q=a%20b"
    assert request.version == "HTTP/1.1"
    assert request.body == sent
    assert sorted(request.headers) == sorted(
        [
            ("Host", f"127.0.0.1:{server.port}"),
            ("Content-Length", str(len(sent))),
            ("Authorization", "Bearer sk-test"),
            ("X-Custom-Header", "Some Value"),
        ]
    )
    # Byte for byte: the request line, then httpx's headers in its order and spelling.
    expected = b"POST /v1/chat/completions?api-version=2024-06&q=a%20b HTTP/1.1\r\n"
    as_built = build(server.url(), content=sent, headers=request_headers).headers.raw
    expected += b"".join(b"%s: %s\r\n" % pair for pair in as_built)
    assert request.head == expected + b"\r\n"


async def test_get_without_a_body_and_a_204_without_one(serve, transport):
    server = await serve(keep_alive(b"HTTP/1.1 204 No Content\r\nX-Done: yes\r\n\r\n", response(b"after")))

    first, body = await fetch(transport, server.url("/models"), method="GET")
    assert (first.status_code, body, first.headers["x-done"]) == (204, b"", "yes")
    [request] = server.requests
    assert (request.method, request.target, request.body) == ("GET", "/models", b"")
    assert request.header("content-length") is None and request.header("transfer-encoding") is None

    second, body = await fetch(transport, server.url("/models"), method="GET")
    assert (second.status_code, body) == (200, b"after")
    assert server.connections == 1  # a 204 has no body to wait for: the connection was reusable at once


async def test_content_length_zero(serve, transport):
    server = await serve(keep_alive(response(b"")))
    for _ in range(2):
        response_, body = await fetch(transport, server.url())
        assert (response_.status_code, body) == (200, b"")
    assert server.connections == 1


async def test_error_status_is_a_response_not_an_exception(serve, transport):
    server = await serve(keep_alive(response(b'{"error": "overloaded"}', status="529 Overloaded")))
    response_, body = await fetch(transport, server.url())
    assert (response_.status_code, body) == (529, b'{"error": "overloaded"}')


async def test_response_dribbled_byte_by_byte(serve, transport):
    data = response(b"slowly, one byte at a time", headers=("X-Long-Header-Name: a fairly long header value",))

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        for i in range(len(data)):
            await peer.send(data[i : i + 1])
            await asyncio.sleep(0.0005)
        await peer.wait_eof()

    server = await serve(handler)
    response_, body = await fetch(transport, server.url())
    assert body == b"slowly, one byte at a time"
    assert response_.headers["x-long-header-name"] == "a fairly long header value"


async def test_chunked_response_is_streamed_as_it_arrives(serve, transport):
    first_read = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: first\n\n"))
        await asyncio.wait_for(first_read.wait(), WAIT)  # chunk 2 only once the client has chunk 1
        await peer.send(chunk(b"data: second\n\n"))
        await asyncio.sleep(0.01)
        await peer.send(chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
        await keep_alive(response(b"next"))(peer)

    server = await serve(handler)
    response_ = await send(transport, server.url("/stream"))
    assert response_.status_code == 200
    assert response_.headers["transfer-encoding"] == "chunked"
    parts = response_.aiter_raw()
    assert await asyncio.wait_for(anext(parts), WAIT) == b"data: first\n\n"
    first_read.set()
    assert b"".join(await rest(parts)) == b"data: second\n\ndata: [DONE]\n\n"

    _, body = await fetch(transport, server.url())
    assert body == b"next"
    assert server.connections == 1  # a chunked response read to its end leaves the connection reusable


async def test_large_body_pauses_reading_until_the_reader_catches_up(serve, transport):
    size = 48 << 20  # well past what the kernel buffers on loopback plus the transport's high-water mark
    payload = bytes(range(256)) * (size // 256)
    drained = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        await peer.send(payload)
        drained.set()
        await keep_alive(response(b"small"))(peer)

    server = await serve(handler)
    response_ = await send(transport, server.url())
    await asyncio.sleep(0.2)
    assert not drained.is_set()  # the client stopped reading the socket: the server's writes back up

    total, pieces, mismatched = 0, 0, False
    async for piece in response_.aiter_raw():
        mismatched = mismatched or piece != payload[total : total + len(piece)]
        total += len(piece)
        pieces += 1
    assert total == size and not mismatched
    assert pieces > 1
    await asyncio.wait_for(drained.wait(), WAIT)

    _, body = await fetch(transport, server.url())
    assert body == b"small"
    assert server.connections == 1


# --- keep-alive and reuse ----------------------------------------------------------------


async def test_sequential_requests_share_one_keep_alive_connection(serve, transport):
    server = await serve(
        keep_alive(response(b"one"), CHUNKED_HEAD + chunk(b"tw") + chunk(b"o") + LAST_CHUNK, response(b"three"))
    )
    bodies = [(await fetch(transport, server.url(f"/r{i}")))[1] for i in range(3)]
    assert bodies == [b"one", b"two", b"three"]
    assert server.connections == 1
    assert [(r.target, r.connection) for r in server.requests] == [("/r0", 0), ("/r1", 0), ("/r2", 0)]


@pytest.mark.parametrize("read_first", [True, False], ids=["partly-read", "unread"])
async def test_response_closed_before_its_end_is_not_reused(serve, transport, read_first):
    server = await serve(
        per_connection(answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", then="stall"), keep_alive())
    )
    response_ = await send(transport, server.url())
    if read_first:
        assert await asyncio.wait_for(anext(response_.aiter_raw()), WAIT) == b"hello"
    await response_.aclose()
    await closed_by_client(server.peers[0])

    _, body = await fetch(transport, server.url())
    assert body == b"ok"
    assert server.connections == 2
    assert server.requests[1].connection == 1


async def test_unread_complete_response_does_not_leak_into_the_next(serve, transport):
    server = await serve(keep_alive(response(b"first"), response(b"second")))
    first = await send(transport, server.url())
    await asyncio.sleep(0.05)  # the whole response has arrived; none of it was read
    await first.aclose()
    _, body = await fetch(transport, server.url())
    assert body == b"second"


async def test_connection_close_header_is_not_reused(serve, transport):
    server = await serve(keep_alive(response(b"bye", headers=("Connection: close",))))
    _, body = await fetch(transport, server.url())
    assert body == b"bye"
    await closed_by_client(server.peers[0])  # the transport closed it, though the server kept it open

    _, body = await fetch(transport, server.url())
    assert body == b"bye"
    assert server.connections == 2


async def test_idle_connection_closed_by_the_server_is_replaced(serve, transport):
    server = await serve(answer_once(response(b"once")))
    _, body = await fetch(transport, server.url())
    assert body == b"once"
    await asyncio.wait_for(server.peers[0].closed.wait(), WAIT)
    await asyncio.sleep(0.05)  # the loop sees the close

    _, body = await fetch(transport, server.url())
    assert body == b"once"
    assert server.connections == 2


async def test_unsolicited_data_on_an_idle_connection_closes_it(serve, transport):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(response(b"first"))
        await asyncio.sleep(0.02)
        await peer.send(b"HTTP/1.1 200 OK\r\n")  # on an idle connection: nothing asked for it
        await peer.wait_eof()

    server = await serve(per_connection(handler, keep_alive(response(b"fresh"))))
    _, body = await fetch(transport, server.url())
    assert body == b"first"
    await closed_by_client(server.peers[0])

    _, body = await fetch(transport, server.url())
    assert body == b"fresh"
    assert server.connections == 2


async def test_idle_connection_past_keepalive_expiry_is_replaced(serve, pool):
    transport = pool(keepalive_expiry=0.05)
    server = await serve(keep_alive(response(b"ok")))
    await fetch(transport, server.url())
    await fetch(transport, server.url())
    assert server.connections == 1  # within the expiry

    await asyncio.sleep(0.1)
    _, body = await fetch(transport, server.url())
    assert body == b"ok"
    assert server.connections == 2
    await closed_by_client(server.peers[0])


async def test_expired_idle_connections_are_swept(serve, pool, monkeypatch):
    monkeypatch.setattr(upstream_transport, "SWEEP_SECONDS", 0.0)
    transport = pool(keepalive_expiry=0.05)
    first, second = await serve(keep_alive(response(b"a"))), await serve(keep_alive(response(b"b")))
    await fetch(transport, first.url())
    await asyncio.sleep(0.1)
    await fetch(transport, second.url())  # a release, which sweeps: the first origin's idle connection expired
    await closed_by_client(first.peers[0])
    assert not second.peers[0].eof.is_set()


async def test_max_keepalive_closes_the_surplus_idle_connection(serve, pool):
    transport = pool(max_keepalive=1)
    release = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbo")
        await asyncio.wait_for(release.wait(), WAIT)
        await peer.send(b"dy")
        await keep_alive(response(b"again"))(peer)

    server = await serve(handler)
    held = [await send(transport, server.url()) for _ in range(2)]  # two at once: two connections
    assert server.connections == 2
    release.set()
    assert [await read(r) for r in held] == [b"body", b"body"]
    await eventually(lambda: sum(p.eof.is_set() for p in server.peers) == 1)  # one kept, one closed

    _, body = await fetch(transport, server.url())
    assert body == b"again"
    assert server.connections == 2


# --- bodies that end with the connection, and ones cut short -----------------------------------


async def test_body_delimited_by_connection_close(serve, transport):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await asyncio.sleep(0.02)
        await peer.send(b"part two")
        # returning closes the connection: the end of the body

    server = await serve(per_connection(handler, keep_alive(response(b"next"))))
    response_, body = await fetch(transport, server.url())
    assert response_.status_code == 200
    assert body == b"part one, part two"

    _, body = await fetch(transport, server.url())
    assert body == b"next"
    assert server.connections == 2


@pytest.mark.parametrize(
    "partial",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        CHUNKED_HEAD + chunk(b"hello"),
        CHUNKED_HEAD + b"a\r\nhel",
    ],
    ids=["content-length", "chunked-between-chunks", "chunked-mid-chunk"],
)
async def test_server_closing_mid_body_is_a_protocol_error(serve, transport, partial):
    server = await serve(per_connection(answer_once(partial), keep_alive(response(b"next"))))
    response_ = await send(transport, server.url())
    assert response_.status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        await read(response_)
    await response_.aclose()

    _, body = await fetch(transport, server.url())
    assert body == b"next"
    assert server.connections == 2


async def test_server_closing_before_any_response_is_a_protocol_error(serve, transport):
    async def handler(peer: Peer) -> None:
        await peer.read_request()

    server = await serve(per_connection(handler, keep_alive(response(b"next"))))
    with pytest.raises(httpx.RemoteProtocolError):
        await send(transport, server.url())
    _, body = await fetch(transport, server.url())
    assert body == b"next"


async def test_server_closing_mid_headers_is_a_protocol_error(serve, transport):
    server = await serve(answer_once(b"HTTP/1.1 200 OK\r\nContent-Len"))
    with pytest.raises(httpx.RemoteProtocolError):
        await send(transport, server.url())


@pytest.mark.parametrize(
    "data",
    [b"this is not http\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"SSH-2.0-OpenSSH_9.6\r\n"],
    ids=["text", "bad-status", "ssh"],
)
async def test_garbage_response_is_a_protocol_error(serve, transport, data):
    server = await serve(per_connection(answer_once(data, then="stall"), keep_alive(response(b"fine"))))
    with pytest.raises(httpx.RemoteProtocolError):
        await send(transport, server.url())
    await closed_by_client(server.peers[0])
    _, body = await fetch(transport, server.url())
    assert body == b"fine"


async def test_garbage_in_a_chunked_body_is_a_protocol_error(serve, transport):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD + chunk(b"good"))
        await asyncio.sleep(0.02)
        await peer.send(b"zz\r\nbad\r\n")
        await peer.wait_eof()

    server = await serve(handler)
    response_ = await send(transport, server.url())
    with pytest.raises(httpx.RemoteProtocolError):
        await read(response_)
    await response_.aclose()
    await closed_by_client(server.peers[0])


# --- timeouts, connect errors, the pool limit ---------------------------------------------------


async def test_read_timeout_waiting_for_the_response(serve, transport):
    server = await serve(stall)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await send(transport, server.url(), read=0.2)
    assert 0.15 <= time.monotonic() - started < 1.0
    await closed_by_client(server.peers[0])


async def test_read_timeout_between_body_chunks(serve, transport):
    server = await serve(answer_once(CHUNKED_HEAD + chunk(b"first"), then="stall"))
    response_ = await send(transport, server.url(), read=0.2)
    parts = response_.aiter_raw()
    assert await asyncio.wait_for(anext(parts), WAIT) == b"first"
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await rest(parts)
    assert 0.15 <= time.monotonic() - started < 1.0
    await response_.aclose()
    await closed_by_client(server.peers[0])


async def test_read_timeout_is_per_read_not_for_the_whole_body(serve, transport):
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(CHUNKED_HEAD)
        for i in range(5):
            await asyncio.sleep(0.06)
            await peer.send(chunk(b"%d" % i))
        await peer.send(LAST_CHUNK)
        await peer.wait_eof()

    server = await serve(handler)
    _, body = await fetch(transport, server.url(), read=0.2)  # 0.3 s in all, never 0.2 s without data
    assert body == b"01234"


async def test_nothing_listening_is_a_connect_error(serve, pool):
    transport = pool(max_connections=1)
    with pytest.raises(httpx.ConnectError):
        await send(transport, f"http://127.0.0.1:{free_port()}/")
    # The failed attempt gave its slot back: the only one there is.
    server = await serve(keep_alive(response(b"up")))
    _, body = await fetch(transport, server.url(), pool=0.2)
    assert body == b"up"


def held_then_fast(release: asyncio.Event) -> Handler:
    """/slow: half its body, the rest once `release` is set; anything else: b"fast"."""

    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            if request.target == "/slow":
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
                await asyncio.wait_for(release.wait(), WAIT)
                await peer.send(b"ow")
            else:
                await peer.send(response(b"fast"))

    return handler


async def test_max_connections_queues_a_request_until_the_connection_is_free(serve, pool):
    transport = pool(max_connections=1)
    release = asyncio.Event()
    server = await serve(held_then_fast(release))
    slow = await send(transport, server.url("/slow"))
    queued = asyncio.create_task(fetch(transport, server.url("/fast")))
    await asyncio.sleep(0.1)
    assert not queued.done()
    assert len(server.requests) == 1

    release.set()
    assert await read(slow) == b"slow"
    _, body = await asyncio.wait_for(queued, WAIT)
    assert body == b"fast"
    assert server.connections == 1  # the queued request reused the freed keep-alive connection


async def test_max_connections_pool_timeout(serve, pool):
    transport = pool(max_connections=1)
    release = asyncio.Event()
    server = await serve(held_then_fast(release))
    slow = await send(transport, server.url("/slow"))
    started = time.monotonic()
    with pytest.raises(httpx.PoolTimeout):
        await send(transport, server.url("/fast"), pool=0.1)
    assert 0.05 <= time.monotonic() - started < 1.0
    assert len(server.requests) == 1

    release.set()
    assert await read(slow) == b"slow"
    _, body = await fetch(transport, server.url("/fast"))
    assert body == b"fast"


async def test_a_cancelled_pool_waiter_does_not_swallow_the_wakeup(serve, pool):
    transport = pool(max_connections=1)
    release = asyncio.Event()
    server = await serve(held_then_fast(release))
    slow = await send(transport, server.url("/slow"))
    # Awaited directly, as httpx's client does (3.11's wait_for would put each in a task of its own).
    first = asyncio.create_task(transport.handle_async_request(build(server.url("/fast"))))
    second = asyncio.create_task(transport.handle_async_request(build(server.url("/fast"))))
    await asyncio.sleep(0.05)  # both queued for the one connection

    release.set()
    # Awaited directly too: the connection is freed and the first waiter woken with no switch to another task...
    assert await slow.aread() == b"slow"
    first.cancel()  # ...which is cancelled (say its client went away) before it runs
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(first, WAIT)
    queued = await asyncio.wait_for(second, WAIT)
    assert await read(queued) == b"fast"


async def test_acquiring_for_another_origin_at_the_limit_closes_an_idle_connection(serve, pool):
    transport = pool(max_connections=1)
    first, second = await serve(keep_alive(response(b"a"))), await serve(keep_alive(response(b"b")))
    await fetch(transport, first.url())
    _, body = await fetch(transport, second.url(), pool=0.2)
    assert body == b"b"
    await closed_by_client(first.peers[0])


# --- cancellation, informational responses ----------------------------------------------------


async def test_cancelled_while_waiting_for_the_response_closes_the_connection(serve, transport):
    server = await serve(per_connection(stall, keep_alive(response(b"fresh"))))
    task = asyncio.create_task(transport.handle_async_request(build(server.url())))
    await eventually(lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    await closed_by_client(server.peers[0])

    _, body = await fetch(transport, server.url())
    assert body == b"fresh"
    assert server.connections == 2


async def test_cancelled_while_reading_the_body_then_closed(serve, transport):
    server = await serve(
        per_connection(answer_once(CHUNKED_HEAD + chunk(b"first"), then="stall"), keep_alive(response(b"fresh")))
    )
    response_ = await send(transport, server.url())
    task = asyncio.create_task(response_.aread())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    await response_.aclose()
    await closed_by_client(server.peers[0])

    _, body = await fetch(transport, server.url())
    assert body == b"fresh"
    assert server.connections == 2


@pytest.mark.parametrize(
    "informational",
    [
        [b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final")],
        [b"HTTP/1.1 100 Continue\r\n\r\n", response(b"final")],
        [b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", response(b"final")],
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n", CHUNKED_HEAD + chunk(b"final") + LAST_CHUNK],
    ],
    ids=["100-same-write", "100-separate-write", "103-with-headers", "two-then-chunked"],
)
async def test_informational_responses_are_skipped(serve, transport, informational):
    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            for data in informational:
                await peer.send(data)
                await asyncio.sleep(0.01)

    server = await serve(handler)
    for _ in range(2):
        response_, body = await fetch(transport, server.url())
        assert (response_.status_code, body) == (200, b"final")
        assert "link" not in response_.headers
    assert server.connections == 1


# --- what httpx itself hands the transport ------------------------------------------------------


def dechunk(raw: bytes) -> bytes | None:
    """A complete chunked body decoded, or None if `raw` is not one."""
    body = b""
    while True:
        size_line, sep, raw = raw.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return None
        if not sep:
            return None
        if size == 0:
            return body if raw == b"\r\n" else None
        if raw[size : size + 2] != b"\r\n":
            return None
        body, raw = body + raw[:size], raw[size + 2 :]


async def test_request_body_of_unknown_length_is_sent_chunked(serve, transport):
    async def body():
        yield b"hello "
        yield b"world"

    sent: list[tuple[bytes, bytes]] = []

    async def handler(peer: Peer) -> None:
        head = await peer.reader.readuntil(b"\r\n\r\n")
        raw = b""
        with contextlib.suppress(TimeoutError):
            while data := await asyncio.wait_for(peer.reader.read(65536), 0.1):  # until the client goes quiet
                raw += data
        sent.append((head, raw))
        await peer.send(response(b"got it"))
        await peer.wait_eof()

    server = await serve(handler)
    _, answer = await fetch(transport, server.url(), content=body())
    assert answer == b"got it"
    [(head, raw)] = sent
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head  # as httpx framed it
    assert dechunk(raw) == b"hello world", f"body not chunk-encoded: {raw!r}"


async def test_head_response_has_no_body(serve, transport):
    server = await serve(keep_alive(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"))
    # A response to HEAD has no body, whatever its Content-Length says.
    response_, body = await fetch(transport, server.url(), method="HEAD", read=0.5)
    assert (response_.status_code, response_.headers["content-length"], body) == (200, "1234", b"")


async def test_async_client_end_to_end(serve):
    async def handler(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            if request.target.startswith("/v1/chat"):
                await peer.send(response(b'{"echo": %s}' % request.body, headers=("Content-Type: application/json",)))
            else:
                await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n") + chunk(b"data: 2\n\n") + LAST_CHUNK)

    server = await serve(handler)
    async with httpx.AsyncClient(transport=UpstreamTransport(), timeout=WAIT) as client:
        reply = await client.post(server.url("/v1/chat?x=1"), json={"a": 1}, headers={"X-Api-Key": "k"})
        assert reply.status_code == 200
        assert reply.json() == {"echo": {"a": 1}}
        assert reply.request.url == server.url("/v1/chat?x=1")

        async with client.stream("GET", server.url("/events")) as streamed:
            lines = [line async for line in streamed.aiter_lines() if line]
        assert lines == ["data: 1", "data: 2"]

        with pytest.raises(httpx.ConnectError) as error:
            await client.get(f"http://127.0.0.1:{free_port()}/")
        assert error.value.request.method == "GET"

    first = server.requests[0]
    assert first.header("content-type") == "application/json"
    assert first.header("x-api-key") == "k"
    assert first.header("user-agent").startswith("python-httpx/")
    assert server.connections == 1
    await closed_by_client(server.peers[0])  # closing the client closed the transport's connections


async def test_one_shared_transport_per_event_loop():
    assert upstream_transport.transport() is upstream_transport.transport()
    assert isinstance(upstream_transport.transport(), UpstreamTransport)


# --- the adapters' path: a prepared head, an UpstreamResponse -------------------------


async def test_prepared_request_is_sent_as_built_and_reused(serve, transport):
    server = await serve(keep_alive(response(b'{"ok": 1}', headers=("Retry-After: 3",))))
    target = RequestTarget("POST", server.url("/v1/chat/completions"), {"authorization": "Bearer sk-x"})
    for body in (b'{"a": 1}', b"{}"):
        answer = await asyncio.wait_for(transport.send(target, body, TIMEOUT), WAIT)
        assert (answer.status_code, await asyncio.wait_for(answer.aread(), WAIT)) == (200, b'{"ok": 1}')
        assert answer.content == b'{"ok": 1}' and answer.headers["retry-after"] == "3"
    first, second = server.requests
    assert first.head == (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nauthorization: Bearer sk-x\r\n"
        b"content-length: 8\r\n\r\n" % server.port
    )
    assert (first.body, second.body) == (b'{"a": 1}', b"{}")
    assert server.connections == 1


@pytest.mark.parametrize(
    "encoding, compress",
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
async def test_compressed_answers_are_decoded(serve, transport, encoding, compress):
    plain = b'{"choices": []}' * 50
    server = await serve(keep_alive(response(compress(plain), headers=(f"Content-Encoding: {encoding}",))))
    target = RequestTarget("POST", server.url(), {})
    answer = await asyncio.wait_for(transport.send(target, b"{}", TIMEOUT), WAIT)
    assert await asyncio.wait_for(answer.aread(), WAIT) == plain
    streamed = await asyncio.wait_for(transport.send(target, b"{}", TIMEOUT), WAIT)
    assert b"".join(await rest(streamed.aiter_raw())) == plain


async def test_invalid_compressed_answer_is_a_decoding_error(serve, transport):
    server = await serve(keep_alive(response(b"not gzip at all", headers=("Content-Encoding: gzip",))))
    answer = await asyncio.wait_for(transport.send(RequestTarget("POST", server.url(), {}), b"{}", TIMEOUT), WAIT)
    with pytest.raises(httpx.DecodingError):
        await asyncio.wait_for(answer.aread(), WAIT)


@pytest.mark.parametrize("headers", [{"x-evil": "a\r\nHost: elsewhere"}, {"x-evil\n": "a"}, {"bad:name": "a"}])
def test_header_injection_is_refused_when_prepared(headers):
    with pytest.raises(ValueError):
        RequestTarget("POST", "http://127.0.0.1:9/v1", headers)


# --- TLS (hosted providers are https) ---------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def tls_server(certificate, body: bytes) -> tuple[asyncio.AbstractServer, int, list[bytes]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                await reader.readexactly(length)
                writer.write(response(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1], heads


async def test_https_upstream_verified_and_kept_alive(certificate, transport, monkeypatch):
    server, port, heads = await tls_server(certificate, b'{"secure": true}')
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(upstream_transport, "_ssl_context", trusting)  # trust the test's own certificate authority
    try:
        target = RequestTarget("POST", f"https://127.0.0.1:{port}/v1/chat/completions", {"authorization": "Bearer k"})
        for _ in range(2):
            answer = await asyncio.wait_for(transport.send(target, b"{}", TIMEOUT), WAIT)
            assert (answer.status_code, await asyncio.wait_for(answer.aread(), WAIT)) == (200, b'{"secure": true}')
        assert len(heads) == 2 and heads[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert len(transport.open) == 1  # one TLS connection, reused
    finally:
        server.close()
        await transport.aclose()
        await server.wait_closed()


async def test_https_upstream_with_an_untrusted_certificate_is_a_connect_error(certificate, transport, monkeypatch):
    server, port, _ = await tls_server(certificate, b"{}")
    monkeypatch.setattr(upstream_transport, "_ssl_context", ssl.create_default_context())  # the system's CAs only
    try:
        target = RequestTarget("POST", f"https://127.0.0.1:{port}/v1/chat/completions", {})
        with pytest.raises(httpx.ConnectError):
            await asyncio.wait_for(transport.send(target, b"{}", TIMEOUT), WAIT)
        assert not transport.open
    finally:
        server.close()
        await server.wait_closed()
