"""A lean asyncio Redis client for the request path, with automatic pipelining.

Every /v1 request makes two Redis calls (admission, settlement: one Lua script
each). Through redis-py's asyncio client each cost about a quarter of the
request's CPU: a pooled connection checked out and back, a lock, command
packing through several layers, a send and a read per command. Here every
process keeps one connection per event loop; the commands issued during one
turn of the loop go out in one write, and the replies, which Redis sends in
order, are parsed by hiredis (redis-py's own C parser) and handed to their
waiting futures in order. Concurrent requests thus share round trips.

It speaks the few commands the hot path uses (`execute` for any other) and
raises redis-py's exception types, so callers are the same as with redis-py.
Only plain TCP `redis://` URLs are handled; `shared.async_redis()` uses
redis-py for anything else (TLS, unix sockets).

With a `timeout`, connecting may take that long, and while commands wait for
replies Redis must send one at least that often: otherwise the waiting commands
fail with redis-py's TimeoutError and the connection is dropped (the next
command opens a new one), as redis-py's `socket_timeout` does. A watchdog timer
per connection, armed only while replies are awaited, costs nothing per command.
"""

from __future__ import annotations

import asyncio
from collections import deque

import hiredis
from redis import exceptions
from redis.connection import parse_url


def supports(url: str) -> bool:
    return url.startswith("redis://")


def pack(args: tuple) -> bytes:
    """A command in RESP (hiredis packs in C: str, bytes, int and float)."""
    try:
        return hiredis.pack_command(args)
    except TypeError:
        raise exceptions.DataError(f"Invalid Redis arguments: {args[0]!r} ...") from None


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float | None = None) -> None:
        self.reader = hiredis.Reader(replyError=exceptions.ResponseError)
        self.pending: deque[asyncio.Future] = deque()
        self.out: list[bytes] = []  # commands of this loop turn, written together
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.timeout = timeout
        self.replies = 0  # replies received so far: the watchdog's sign of progress
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                self.replies += 1
                future = self.pending.popleft()
                if future.done():
                    continue  # its caller was cancelled; the reply is dropped in order
                if isinstance(reply, exceptions.ResponseError):
                    future.set_exception(_error(reply))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            self._fail(exceptions.ConnectionError(f"Redis protocol error: {exc}"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exceptions.ConnectionError("Connection to Redis lost"))

    def write(self, data: bytes) -> None:
        self.transport.write(data)
        if self.timeout is not None and self.watchdog is None:
            self._watch(self.replies)

    def _watch(self, seen: int) -> None:
        self.watchdog = asyncio.get_running_loop().call_later(self.timeout, self._check, seen)

    def _check(self, seen: int) -> None:
        self.watchdog = None
        if not self.pending or self.closed:
            return
        if self.replies != seen:
            self._watch(self.replies)  # still answering: give it another period
            return
        self._fail(exceptions.TimeoutError(f"Redis sent no reply within {self.timeout:g} s"))
        self.transport.close()

    def _fail(self, error: Exception) -> None:
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)


def _flush(protocol: _Protocol) -> None:
    data = b"".join(protocol.out)
    protocol.out.clear()
    if protocol.closed:
        protocol._fail(exceptions.ConnectionError("Connection to Redis lost"))
    else:
        protocol.write(data)


def _error(reply: exceptions.ResponseError) -> exceptions.ResponseError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return exceptions.NoScriptError(message)
    return reply


class LeanRedis:
    """One pipelined connection to Redis, for one event loop."""

    def __init__(self, url: str, timeout: float | None = None) -> None:
        options = parse_url(url)
        self.timeout = timeout
        self.host = options.get("host") or "127.0.0.1"
        self.port = int(options.get("port") or 6379)
        self.db = int(options.get("db") or 0)
        self.username = options.get("username")
        self.password = options.get("password")
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._loop = asyncio.get_running_loop()

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            self._connecting = self._loop.create_task(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> _Protocol:
        try:
            async with asyncio.timeout(self.timeout):
                _, protocol = await self._loop.create_connection(lambda: _Protocol(self.timeout), self.host, self.port)
        except OSError as exc:  # TimeoutError is one
            where = f"Redis at {self.host}:{self.port}"
            if isinstance(exc, TimeoutError) and self.timeout is not None:
                raise exceptions.TimeoutError(
                    f"Cannot connect to {where}: no answer within {self.timeout:g} s"
                ) from None
            raise exceptions.ConnectionError(f"Cannot connect to {where}: {exc}") from None
        setup = []
        if self.password is not None:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            setup.append(auth)
        if self.db:
            setup.append(("SELECT", self.db))
        futures = []
        for args in setup:
            future = self._loop.create_future()
            protocol.pending.append(future)
            protocol.write(pack(args))
            futures.append(future)
        try:
            for future in futures:
                await future
        except BaseException:
            protocol.transport.close()  # e.g. a wrong password or database number
            raise
        self._protocol = protocol
        return protocol

    async def execute(self, *args):
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connection()
        command = pack(args)  # first: a command that cannot be sent must not take a reply's place
        future = self._loop.create_future()
        protocol.pending.append(future)
        if not protocol.out:
            self._loop.call_soon(_flush, protocol)
        protocol.out.append(command)
        return await future

    # --- the commands the request path uses ------------------------------------

    async def get(self, key):
        return await self.execute("GET", key)

    async def set(self, key, value, *, ex: int | None = None, nx: bool = False):
        args = ["SET", key, value]
        if ex is not None:
            args += ["EX", ex]
        if nx:
            args.append("NX")
        return (await self.execute(*args)) is not None

    async def mget(self, keys: list):
        return await self.execute("MGET", *keys) if keys else []

    async def hmget(self, key, *fields):
        return await self.execute("HMGET", key, *fields)

    async def hincrby(self, key, field, amount: int = 1):
        return await self.execute("HINCRBY", key, field, amount)

    async def delete(self, *keys):
        return await self.execute("DEL", *keys)

    async def evalsha(self, sha: str, numkeys: int, *args):
        return await self.execute("EVALSHA", sha, numkeys, *args)

    async def eval(self, script: str, numkeys: int, *args):
        return await self.execute("EVAL", script, numkeys, *args)

    async def flushdb(self):
        return await self.execute("FLUSHDB")

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
