"""The per-process pooled HTTP/1.1 transport for upstream calls.

It is an httpx transport (httpx clients can use it as any other), and it has
a leaner path for the adapters: a request head prepared once per provider and
path (`RequestTarget`) plus a body, answered by an `UpstreamResponse` with
only what adapters read, so no httpx Request/Response objects are built per
call. It replaces httpcore: a proxied request spent a third of its CPU there
and in the anyio layer below it (cancel scopes, locks, a poll() per reused
connection, h11's pure-Python parser), and another ~15 % building httpx's
request and response objects. Here each connection is an asyncio protocol
with httptools' C parser (the one uvicorn serves with): one write per
request, the response parsed as it arrives, and a connection the server
closes is known closed at once (`connection_lost`), so reuse needs no syscall.

The pool keeps idle keep-alive connections per origin (most recently used
first), at most `max_connections` open in all (callers wait up to the pool
timeout for one), closes idle ones after `keepalive_expiry`, and never reuses
a connection whose response was not read to its end. Errors are httpx's own
exception types, so callers cannot tell the difference.

The pool is bound to the event loop it first ran on; servers run one loop,
tests several, so there is one pool per loop.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import weakref
import zlib
from collections import deque

import httptools
import httpx

MAX_CONNECTIONS = 1000
MAX_KEEPALIVE = 200
KEEPALIVE_EXPIRY = 60.0
SWEEP_SECONDS = 1.0
HIGH_WATER = 1 << 20  # buffered response bytes at which reading pauses
DEFAULT_PORTS = {b"http": 80, b"https": 443}

_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ssl_context: ssl.SSLContext | None = None


def ssl_context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


class Connection(asyncio.Protocol):
    """One keep-alive connection to an origin, carrying one request at a time."""

    def __init__(self, pool: UpstreamTransport, origin: tuple) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.expect_body = True
        self._reset()

    def _reset(self) -> None:
        if not self.expect_body:
            # The parser was left expecting the body a HEAD answer never sends.
            self.parser = httptools.HttpResponseParser(self)
            self.expect_body = True
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.framed = False  # the body has a length or is chunked (else it ends when the connection does)
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future | None = None
        self.busy = False

    # --- asyncio.Protocol ---------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self._fail(httpx.RemoteProtocolError("Upstream sent data without a request"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"Invalid HTTP response from upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.lost(self)
        if self.busy and not self.complete:
            if self.headers_done and not self.framed and self.error is None:
                self.complete = True  # a body delimited by the end of the connection
            elif self.error is None:
                self.error = httpx.RemoteProtocolError("Server disconnected without sending a complete response")
            self._wake()

    # --- httptools callbacks ---------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # 1xx: informational, the real answer follows
            self.headers = []
            self.framed = False
            return
        self.headers_done = True
        if self.status in (204, 304):
            self.framed = True
        if not self.expect_body:  # the answer to HEAD: no body, whatever its headers say
            self.keep_alive = self.parser.should_keep_alive()
            self.framed = self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered >= HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.keep_alive = self.parser.should_keep_alive()  # only known while the message is current
            self.framed = True
            self.complete = True
            self._wake()

    # --- used by the transport -------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.pool.lost(self)

    async def wait(self, timeout: float | None) -> None:
        """Until the parser has more for the reader, or `timeout` seconds."""
        if self.error is not None:
            raise self.error
        self.waiter = waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def take_body(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks = []
        self.buffered = 0
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("Timed out waiting for the upstream"))


class ResponseBody(httpx.AsyncByteStream):
    """The body of one response, read from its connection as it arrives; the
    connection goes back to the pool once the body was read to its end."""

    def __init__(self, connection: Connection, timeout: float | None) -> None:
        self.connection = connection
        self.timeout = timeout
        self.released = False

    async def __aiter__(self):
        connection = self.connection
        while True:
            if connection.chunks:
                yield connection.take_body()
                continue
            if connection.complete:
                break
            await connection.wait(self.timeout)
        self.release()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.connection.pool.release(self.connection)

    async def aclose(self) -> None:
        self.release()


class UpstreamResponse(ResponseBody):
    """A response as adapters use it: status, headers, body (whole or raw
    chunks). gzip and deflate bodies are decoded, as httpx would."""

    def __init__(self, connection: Connection, timeout: float | None) -> None:
        super().__init__(connection, timeout)
        self.status_code = connection.status
        self.raw_headers = connection.headers
        self.content = b""
        self._headers: httpx.Headers | None = None

    @property
    def headers(self) -> httpx.Headers:
        if self._headers is None:
            self._headers = httpx.Headers(self.raw_headers)
        return self._headers

    def _decoder(self):
        for name, value in self.raw_headers:
            if name.lower() == b"content-encoding":
                encoding = value.strip().lower()
                if encoding in (b"gzip", b"x-gzip"):
                    return zlib.decompressobj(zlib.MAX_WBITS | 16)
                if encoding == b"deflate":
                    return zlib.decompressobj()
        return None

    async def aiter_raw(self):
        """The body as it arrives (decoded, when the upstream compressed it)."""
        decoder = self._decoder()
        try:
            async for chunk in self:
                if decoder is not None:
                    chunk = decoder.decompress(chunk)
                if chunk:
                    yield chunk
        except zlib.error:
            raise httpx.DecodingError("Invalid compressed body from upstream") from None

    async def aread(self) -> bytes:
        connection = self.connection
        if connection.complete and not self.released and self._decoder() is None:
            self.content = connection.take_body()  # the whole body came with the head
            self.release()
        else:
            self.content = b"".join([chunk async for chunk in self.aiter_raw()])
        return self.content


class RequestTarget:
    """A prepared request line and headers (all but Content-Length) for one
    method, URL and set of headers: built once, sent many times."""

    __slots__ = ("head", "method", "origin")

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        parsed = httpx.URL(url)
        self.method = method
        self.origin = origin_of(parsed)
        lines = [f"{method} {parsed.raw_path.decode('ascii')} HTTP/1.1", f"host: {parsed.netloc.decode('ascii')}"]
        for name, value in headers.items():
            if "\r" in name + value or "\n" in name + value or ":" in name:
                raise ValueError(f"Invalid upstream header {name!r}")
            lines.append(f"{name}: {value}")
        self.head = ("\r\n".join(lines) + "\r\n").encode("latin-1")


def origin_of(url: httpx.URL) -> tuple:
    scheme = url.raw_scheme
    return (scheme, url.raw_host, url.port or DEFAULT_PORTS.get(scheme, 80))


class UpstreamTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        max_connections: int = MAX_CONNECTIONS,
        max_keepalive: int = MAX_KEEPALIVE,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self.idle: dict[tuple, list[Connection]] = {}
        self.idle_count = 0
        self.open = set()  # every connection, idle or busy
        self.waiting: deque[asyncio.Future] = deque()
        self.last_sweep = time.monotonic()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """httpx's transport interface (for httpx clients and anything generic)."""
        url = request.url
        if isinstance(request.stream, httpx.ByteStream):
            body = request.content
        else:
            body = await request.aread()
            if b"chunked" in request.headers.get("transfer-encoding", "").encode().lower():
                body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % pair for pair in request.headers.raw]
        head.append(b"\r\n")
        timeouts = request.extensions.get("timeout") or {}
        connection = await self._exchange(
            origin_of(url), b"".join(head) + body, timeouts, expect_body=request.method != "HEAD"
        )
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=ResponseBody(connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def send(self, target: RequestTarget, body: bytes, timeouts: dict) -> UpstreamResponse:
        """The proxy's own path: a prepared request head plus a body, and a
        response with only what adapters read (no httpx objects to build)."""
        payload = b"%scontent-length: %d\r\n\r\n%s" % (target.head, len(body), body)
        connection = await self._exchange(target.origin, payload, timeouts, expect_body=target.method != "HEAD")
        return UpstreamResponse(connection, timeouts.get("read"))

    async def _exchange(self, origin: tuple, payload: bytes, timeouts: dict, *, expect_body: bool) -> Connection:
        """Send one request on a pooled connection and wait for the response's head."""
        connection = await self.acquire(origin, timeouts.get("connect"), timeouts.get("pool"))
        try:
            connection.expect_body = expect_body
            connection.transport.write(payload)
            read_timeout = timeouts.get("read")
            while not connection.headers_done:
                await connection.wait(read_timeout)
        except BaseException:
            connection.close()
            raise
        return connection

    # --- the pool -----------------------------------------------------------

    async def acquire(self, origin: tuple, connect_timeout: float | None, pool_timeout: float | None) -> Connection:
        deadline = None
        while True:
            connection = self._take_idle(origin)
            if connection is not None:
                return connection
            if len(self.open) < self.max_connections:
                return await self._connect(origin, connect_timeout)
            if self.idle_count:  # idle connections to other origins: make room
                self._close_oldest_idle()
                continue
            loop = asyncio.get_running_loop()
            if deadline is None and pool_timeout is not None:
                deadline = loop.time() + pool_timeout
            waiter = loop.create_future()
            self.waiting.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter in self.waiting:
                    self.waiting.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, but leaving: the wake-up goes to the next in line
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("Timed out waiting for an upstream connection") from None
                raise
            # Woken: a connection was released or closed; look again.

    def _take_idle(self, origin: tuple) -> Connection | None:
        idle = self.idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self.idle_count -= 1
            if connection.closed or now - connection.idle_since > self.keepalive_expiry:
                connection.close()
                continue
            connection.busy = True
            return connection
        return None

    async def _connect(self, origin: tuple, timeout: float | None) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = Connection(self, origin)
        self.open.add(connection)
        hostname = host.decode("ascii")
        tls = scheme == b"https"
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: connection,
                    hostname,
                    port,
                    ssl=ssl_context() if tls else None,
                    server_hostname=hostname if tls else None,
                )
        except TimeoutError:
            connection.close()
            raise httpx.ConnectTimeout(f"Timed out connecting to {hostname}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            connection.close()
            raise httpx.ConnectError(f"Cannot connect to {hostname}:{port}: {exc.strerror or exc}") from None
        except BaseException:
            connection.close()
            raise
        connection.busy = True
        return connection

    def release(self, connection: Connection) -> None:
        """A response is done with its connection: keep it for reuse, or close it."""
        if not connection.reusable():
            connection.close()
            return
        connection._reset()
        now = time.monotonic()
        connection.idle_since = now
        self.idle.setdefault(connection.origin, []).append(connection)
        self.idle_count += 1
        if self.idle_count > self.max_keepalive:
            self._close_oldest_idle()
        if now - self.last_sweep >= SWEEP_SECONDS:
            self.last_sweep = now
            self._sweep(now)
        self._wake_one()

    def lost(self, connection: Connection) -> None:
        """A connection closed (by either side): forget it."""
        if connection in self.open:
            self.open.discard(connection)
            idle = self.idle.get(connection.origin)
            if idle and connection in idle:
                idle.remove(connection)
                self.idle_count -= 1
            self._wake_one()

    def _close_oldest_idle(self) -> None:
        oldest = min((idle[0] for idle in self.idle.values() if idle), key=lambda c: c.idle_since)
        oldest.close()

    def _sweep(self, now: float) -> None:
        for idle in self.idle.values():
            for connection in [c for c in idle if now - c.idle_since > self.keepalive_expiry]:
                connection.close()

    def _wake_one(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        for connection in list(self.open):
            connection.close()


def transport() -> UpstreamTransport:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        # Timeouts are set per request from each provider's config.
        pool = _pools[loop] = UpstreamTransport()
    return pool
