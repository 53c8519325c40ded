"""The request path's Redis client (core/redis_client.py): LeanRedis, one pipelined
connection per event loop, against the real Redis at 127.0.0.1:6379, database 14
only (other test runs use 15, the benchmark 3). Every key a test writes starts
with its own prefix and is deleted afterwards."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
import weakref

import hiredis
import httpx
import pytest
import redis
import redis.asyncio as aredis
from redis import exceptions

from core import redis_client, shared_redis
from core.redis_client import LeanRedis

DB = 14
URL = f"redis://127.0.0.1:6379/{DB}"
WAIT = 3.0  # the longest any single wait in these tests may take


def within(awaitable):
    return asyncio.wait_for(awaitable, WAIT)


async def until(condition) -> None:
    """Let the loop run until `condition()` holds (bounded)."""

    async def poll():
        while not condition():
            await asyncio.sleep(0.005)

    await within(poll())


@pytest.fixture
def sync():
    """A plain redis-py client on the same database, to look from outside."""
    client = redis.Redis.from_url(URL)
    yield client
    client.close()


@pytest.fixture
def prefix(sync):
    prefix = f"test-resp:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(sync.scan_iter(match=prefix + "*"))
    if keys:
        sync.delete(*keys)


@pytest.fixture
async def lean():
    client = LeanRedis(URL)
    yield client
    await client.aclose()


# --- the commands the request path uses ------------------------------------------


async def test_get_and_set(lean, sync, prefix):
    assert await within(lean.set(prefix + "k", "v")) is True
    assert await within(lean.get(prefix + "k")) == b"v"
    assert await within(lean.get(prefix + "missing")) is None
    assert sync.get(prefix + "k") == b"v"
    assert await within(lean.set(prefix + "k", "w")) is True  # plain SET overwrites
    assert await within(lean.get(prefix + "k")) == b"w"


async def test_set_nx_does_not_overwrite(lean, sync, prefix):
    assert await within(lean.set(prefix + "k", "first", nx=True)) is True
    assert await within(lean.set(prefix + "k", "second", nx=True)) is False
    assert await within(lean.get(prefix + "k")) == b"first"


async def test_set_ex_sets_an_expiry(lean, sync, prefix):
    assert await within(lean.set(prefix + "ex", "v", ex=30)) is True
    assert 0 < sync.ttl(prefix + "ex") <= 30
    assert 0 < await within(lean.execute("TTL", prefix + "ex")) <= 30
    await within(lean.set(prefix + "plain", "v"))
    assert sync.ttl(prefix + "plain") == -1
    assert await within(lean.set(prefix + "both", "v", ex=30, nx=True)) is True
    assert await within(lean.set(prefix + "both", "w", ex=30, nx=True)) is False
    assert sync.get(prefix + "both") == b"v" and 0 < sync.ttl(prefix + "both") <= 30


async def test_mget(lean, sync, prefix):
    assert await within(lean.mget([])) == []
    assert lean._protocol is None  # an empty MGET is not sent (Redis would refuse it)
    sync.set(prefix + "a", "1")
    sync.set(prefix + "c", "3")
    keys = [prefix + "a", prefix + "b", prefix + "c"]
    assert await within(lean.mget(keys)) == [b"1", None, b"3"]


async def test_hincrby_and_hmget(lean, sync, prefix):
    key = prefix + "h"
    assert await within(lean.hincrby(key, "n")) == 1
    assert await within(lean.hincrby(key, "n", 5)) == 6
    assert await within(lean.hincrby(key, "m", -3)) == -3
    assert await within(lean.hmget(key, "n", "missing", "m")) == [b"6", None, b"-3"]
    assert await within(lean.hmget(prefix + "no-hash", "n")) == [None]
    assert sync.hgetall(key) == {b"n": b"6", b"m": b"-3"}


async def test_delete_counts_the_keys_it_removed(lean, sync, prefix):
    sync.set(prefix + "a", "1")
    sync.set(prefix + "b", "2")
    assert await within(lean.delete(prefix + "a", prefix + "b", prefix + "missing")) == 2
    assert sync.exists(prefix + "a", prefix + "b") == 0
    assert await within(lean.delete(prefix + "a")) == 0


async def test_execute_any_command_with_redis_py_reply_types(lean, sync, prefix):
    assert await within(lean.execute("INCRBY", prefix + "n", 5)) == 5
    assert await within(lean.execute("INCRBY", prefix + "n", -2)) == 3
    assert await within(lean.execute("TTL", prefix + "n")) == -1
    assert await within(lean.execute("TTL", prefix + "missing")) == -2
    assert await within(lean.execute("EXPIRE", prefix + "n", 100)) == 1
    assert 0 < await within(lean.execute("TTL", prefix + "n")) <= 100
    assert await within(lean.execute("RPUSH", prefix + "l", "x", "y")) == 2
    assert await within(lean.execute("LRANGE", prefix + "l", 0, -1)) == [b"x", b"y"]
    assert await within(lean.execute("ECHO", "hello")) == b"hello"
    # no response callbacks: status replies come back as their bytes
    assert await within(lean.execute("PING")) == b"PONG"
    assert await within(lean.execute("SET", prefix + "s", "v")) == b"OK"
    assert await within(lean.execute("SET", prefix + "s", "w", "NX")) is None
    # the same values redis-py (decode_responses=False) gives for these
    assert sync.execute_command("LRANGE", prefix + "l", 0, -1) == [b"x", b"y"]
    assert sync.execute_command("INCRBY", prefix + "n", 0) == 3


async def test_eval_and_evalsha(lean, prefix):
    script = f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}}"
    assert await within(lean.eval(script, 1, prefix + "k", "a", 41)) == [prefix.encode() + b"k", b"a", 42]
    sha = await within(lean.execute("SCRIPT", "LOAD", script))
    assert await within(lean.evalsha(sha.decode(), 1, prefix + "k", "b", 1)) == [prefix.encode() + b"k", b"b", 2]


# --- the database of the URL -------------------------------------------------------


async def test_select_uses_the_database_of_the_url(lean, sync, prefix):
    await within(lean.set(prefix + "k", "on-14"))
    assert sync.get(prefix + "k") == b"on-14"
    db0 = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        assert db0.exists(prefix + "k") == 0  # read only: nothing is written to db 0
    finally:
        db0.close()
    assert f" db={DB} ".encode() in await within(lean.execute("CLIENT", "INFO"))


async def test_url_parts():
    client = LeanRedis("redis://user:secret@redis.example:7000/3")
    assert (client.host, client.port, client.db) == ("redis.example", 7000, 3)
    assert (client.username, client.password) == ("user", "secret")
    client = LeanRedis("redis://localhost")
    assert (client.host, client.port, client.db, client.password) == ("localhost", 6379, 0, None)
    assert client._protocol is None  # nothing connects before the first command


async def test_auth_with_username_then_select(sync, prefix):
    # The server's default user has no password: AUTH default <anything> succeeds.
    client = LeanRedis(f"redis://default:anything@127.0.0.1:6379/{DB}")
    try:
        await within(client.set(prefix + "k", "authed"))
        assert sync.get(prefix + "k") == b"authed"
        info = await within(client.execute("CLIENT", "INFO"))
        assert b" user=default " in info and f" db={DB} ".encode() in info
    finally:
        await client.aclose()


async def test_failed_setup_raises_the_servers_error_and_closes_its_connection(monkeypatch):
    """A wrong password or database: the error of AUTH/SELECT is raised, and the
    connection that failed its setup is not left open (each command retries)."""
    loop = asyncio.get_running_loop()
    transports = []
    create_connection = loop.create_connection

    async def recording(*args, **kwargs):
        transport, protocol = await create_connection(*args, **kwargs)
        transports.append(transport)
        return transport, protocol

    monkeypatch.setattr(loop, "create_connection", recording)
    for url, message in [
        (f"redis://:wrong@127.0.0.1:6379/{DB}", "AUTH"),
        ("redis://127.0.0.1:6379/99999", "DB index is out of range"),
    ]:
        client = LeanRedis(url)
        with pytest.raises(exceptions.ResponseError, match=message):
            await within(client.execute("PING"))
        with pytest.raises(exceptions.ResponseError, match=message):
            await within(client.execute("PING"))  # tried again, not a remembered failure
        await asyncio.sleep(0.01)
        await client.aclose()
    assert len(transports) == 4
    assert all(transport.is_closing() for transport in transports)


# --- pipelining --------------------------------------------------------------------


async def test_concurrent_commands_are_pipelined_in_one_write(lean, sync, prefix, monkeypatch):
    key = prefix + "counter"
    await within(lean.execute("PING"))  # connected
    transport = lean._protocol.transport
    writes: list[bytes] = []
    write = transport.write

    def counting(data) -> None:
        writes.append(bytes(data))
        write(data)

    monkeypatch.setattr(transport, "write", counting)
    values = await within(asyncio.gather(*(lean.execute("INCR", key) for _ in range(200))))
    assert sorted(values) == list(range(1, 201))  # each caller got its own reply
    assert values == list(range(1, 201))  # sent, and answered, in the order issued
    assert sync.get(key) == b"200"
    # the commands of one loop turn go out together
    assert len(writes) == 1
    assert sum(data.count(b"INCR") for data in writes) == 200

    # commands awaited one after another: one write each
    writes.clear()
    for _ in range(3):
        await within(lean.execute("INCR", key))
    assert len(writes) == 3
    assert sync.get(key) == b"203"


async def test_commands_of_different_kinds_in_one_batch_get_their_own_replies(lean, sync, prefix):
    sync.set(prefix + "s", "text")
    sync.hset(prefix + "h", mapping={"f": "1"})
    replies = await within(
        asyncio.gather(
            lean.get(prefix + "s"),
            lean.execute("INCR", prefix + "n"),
            lean.hmget(prefix + "h", "f", "g"),
            lean.get(prefix + "missing"),
            lean.mget([prefix + "s", prefix + "n"]),
            lean.execute("INCR", prefix + "s"),  # an error in the middle of the batch
            lean.set(prefix + "new", "v", nx=True),
            lean.delete(prefix + "s"),
            return_exceptions=True,
        )
    )
    assert replies[:5] == [b"text", 1, [b"1", None], None, [b"text", b"1"]]
    assert isinstance(replies[5], exceptions.ResponseError)
    assert replies[6:] == [True, 1]


def count_connects(client: LeanRedis) -> list[int]:
    """Count the client's connection attempts from now on, in the one item of
    the list returned."""
    connects = [0]
    connect = client._connect

    async def counting():
        connects[0] += 1
        return await connect()

    client._connect = counting
    return connects


async def test_first_commands_share_one_connection(prefix):
    client = LeanRedis(URL)
    connects = count_connects(client)
    try:
        values = await within(asyncio.gather(*(client.execute("INCR", prefix + "n") for _ in range(20))))
        assert sorted(values) == list(range(1, 21))
        assert connects == [1]
    finally:
        await client.aclose()


# --- errors ------------------------------------------------------------------------


async def test_command_error_raises_response_error_and_the_connection_stays_usable(lean, sync, prefix):
    sync.set(prefix + "k", "not-a-number")
    with pytest.raises(exceptions.ResponseError, match="not an integer") as error:
        await within(lean.execute("INCR", prefix + "k"))
    assert type(error.value) is exceptions.ResponseError
    assert await within(lean.get(prefix + "k")) == b"not-a-number"

    with pytest.raises(exceptions.ResponseError, match="unknown command"):
        await within(lean.execute("NO-SUCH-COMMAND", "x"))
    with pytest.raises(exceptions.ResponseError, match="WRONGTYPE"):
        await within(lean.hincrby(prefix + "k", "f"))
    assert await within(lean.execute("INCR", prefix + "n")) == 1


async def test_evalsha_of_an_unknown_script_raises_no_script_error(lean, prefix):
    with pytest.raises(exceptions.NoScriptError):
        await within(lean.evalsha("0" * 40, 1, prefix + "k"))
    assert issubclass(exceptions.NoScriptError, exceptions.ResponseError)
    assert await within(lean.execute("INCR", prefix + "n")) == 1


async def test_lua_script_falls_back_to_eval_then_runs_by_sha(lean, sync, prefix):
    text = f"-- {uuid.uuid4().hex} (unknown to Redis)\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    script = shared_redis.LuaScript(text)
    sent: list[str] = []
    execute = lean.execute

    async def recording(*args):
        sent.append(args[0])
        return await execute(*args)

    lean.execute = recording
    assert await within(script(lean, [prefix + "n"], [5])) == 5
    assert sent == ["EVALSHA", "EVAL"]
    sent.clear()
    assert await within(script(lean, [prefix + "n"], [2])) == 7
    assert sent == ["EVALSHA"]
    assert sync.get(prefix + "n") == b"7"
    assert sync.script_exists(script.sha) == [True]


# --- a lost connection -------------------------------------------------------------


async def test_killed_connection_fails_commands_in_flight_and_the_next_reconnects(lean, sync, prefix):
    first_id = await within(lean.execute("CLIENT", "ID"))
    blocked = asyncio.create_task(lean.execute("BLPOP", prefix + "never", 2))
    await until(lambda: any(c["id"] == str(first_id) and c["cmd"] == "blpop" for c in sync.client_list()))
    assert sync.client_kill_filter(_id=first_id) == 1

    with pytest.raises(exceptions.ConnectionError):
        await within(blocked)

    assert await within(lean.set(prefix + "k", "after")) is True
    second_id = await within(lean.execute("CLIENT", "ID"))
    assert second_id != first_id
    assert sync.get(prefix + "k") == b"after"  # still on db 14
    assert f" db={DB} ".encode() in await within(lean.execute("CLIENT", "INFO"))


async def test_connection_killed_while_idle_reconnects_for_the_next_command(lean, sync, prefix):
    first_id = await within(lean.execute("CLIENT", "ID"))
    protocol = lean._protocol
    sync.client_kill_filter(_id=first_id)
    await until(lambda: protocol.closed)  # the loss was noticed (EOF)

    assert await within(lean.execute("INCR", prefix + "n")) == 1
    assert await within(lean.execute("CLIENT", "ID")) != first_id
    assert sync.get(prefix + "n") == b"1"


async def test_closed_transport_fails_commands_in_flight_and_the_next_reconnects(lean, sync, prefix):
    await within(lean.execute("PING"))
    protocol = lean._protocol
    in_flight = asyncio.create_task(lean.execute("BLPOP", prefix + "never", 2))
    await asyncio.sleep(0.05)  # written
    protocol.transport.close()
    with pytest.raises(exceptions.ConnectionError):
        await within(in_flight)
    assert protocol.closed and not protocol.pending

    assert await within(lean.set(prefix + "k", "v")) is True
    assert lean._protocol is not protocol
    assert sync.get(prefix + "k") == b"v"


async def test_concurrent_commands_after_a_loss_share_one_reconnect(lean, sync, prefix):
    first_id = await within(lean.execute("CLIENT", "ID"))
    protocol = lean._protocol
    sync.client_kill_filter(_id=first_id)
    await until(lambda: protocol.closed)
    connects = count_connects(lean)
    values = await within(asyncio.gather(*(lean.execute("INCR", prefix + "n") for _ in range(10))))
    assert sorted(values) == list(range(1, 11))
    assert connects == [1]


# --- cancellation ------------------------------------------------------------------


async def test_cancelled_command_reply_is_dropped_in_order(lean, sync, prefix):
    queue = prefix + "queue"
    await within(lean.execute("PING"))
    blocked = asyncio.create_task(lean.execute("BLPOP", queue, 0.5))
    await asyncio.sleep(0.02)  # BLPOP written: Redis blocks this connection on it
    behind = [
        asyncio.create_task(lean.set(prefix + "k", "x")),
        asyncio.create_task(lean.get(prefix + "k")),
        asyncio.create_task(lean.execute("INCR", prefix + "n")),
        asyncio.create_task(lean.execute("LPUSH", queue, "mine")),
    ]
    await asyncio.sleep(0.02)  # written too, queued on the server behind BLPOP
    blocked.cancel()
    sync.rpush(queue, "popped")  # BLPOP now answers [queue, b"popped"], to nobody

    assert await within(asyncio.gather(*behind)) == [True, b"x", 1, 1]
    assert blocked.cancelled()
    assert sync.lrange(queue, 0, -1) == [b"mine"]  # BLPOP did run and take its element
    assert await within(lean.get(prefix + "k")) == b"x"
    assert not lean._protocol.pending


async def test_cancelled_slow_command_that_times_out_still_keeps_replies_matched(lean, prefix):
    await within(lean.execute("PING"))
    blocked = asyncio.create_task(lean.execute("BLPOP", prefix + "empty", 0.5))
    await asyncio.sleep(0.02)
    behind = asyncio.gather(lean.execute("INCR", prefix + "n"), lean.execute("ECHO", "after"))
    await asyncio.sleep(0.02)
    blocked.cancel()
    assert await within(behind) == [1, b"after"]  # after BLPOP's nil (0.5 s), which is dropped
    assert blocked.cancelled()


async def test_command_cancelled_before_it_is_written_keeps_replies_matched(lean, sync, prefix):
    await within(lean.execute("PING"))
    task = asyncio.create_task(lean.execute("INCR", prefix + "n"))
    await asyncio.sleep(0)  # the task has queued its command; the write is later in this turn
    task.cancel()
    value = await within(lean.execute("INCR", prefix + "n"))
    assert task.cancelled()
    assert value == int(sync.get(prefix + "n"))
    assert await within(lean.execute("ECHO", "next")) == b"next"


# --- connecting --------------------------------------------------------------------


async def test_nothing_listening_raises_connection_error():
    client = LeanRedis("redis://127.0.0.1:1/14")
    with pytest.raises(exceptions.ConnectionError, match="127.0.0.1:1"):
        await within(client.get("k"))
    replies = await within(asyncio.gather(*(client.execute("PING") for _ in range(3)), return_exceptions=True))
    assert all(isinstance(reply, exceptions.ConnectionError) for reply in replies)
    with pytest.raises(exceptions.ConnectionError):  # tried again, not a remembered failure
        await within(client.execute("PING"))
    assert client._protocol is None
    await client.aclose()


# --- timeouts ----------------------------------------------------------------------


class FakeRedis:
    """A TCP server on loopback that parses commands and answers each one after
    `delay` seconds (or never, with `delay=None`), in order."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.connections = 0
        self.commands: list[list] = []

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        self.connections += 1
        parser = hiredis.Reader()
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    self.commands.append(command)
                    if self.delay is not None:
                        await asyncio.sleep(self.delay)
                        writer.write(b"+OK\r\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def test_no_reply_within_the_timeout_fails_waiting_commands_and_drops_the_connection():
    async with FakeRedis(delay=None) as server:
        client = LeanRedis(server.url, timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await within(asyncio.gather(*(client.execute("PING") for _ in range(3)), return_exceptions=True))
        waited = loop.time() - started
        assert all(isinstance(reply, exceptions.TimeoutError) for reply in replies), replies
        assert "0.2 s" in str(replies[0])
        assert 0.2 <= waited < 1.0
        assert client._protocol.closed
        with pytest.raises(exceptions.TimeoutError):  # the next command opens a new connection
            await within(client.execute("PING"))
        assert server.connections == 2
        await client.aclose()


async def test_slow_replies_that_keep_coming_do_not_time_out():
    """The timeout bounds the silence between replies, not a batch's total time."""
    async with FakeRedis(delay=0.1) as server:
        client = LeanRedis(server.url, timeout=0.35)
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await within(asyncio.gather(*(client.execute("ECHO", n) for n in range(6))))
        assert replies == [b"OK"] * 6
        assert loop.time() - started >= 0.6  # twice the timeout in all, without a failure
        assert server.connections == 1
        await client.aclose()


async def test_timeout_during_setup_closes_the_connection():
    async with FakeRedis(delay=None) as server:
        client = LeanRedis(server.url + "/3", timeout=0.2)
        with pytest.raises(exceptions.TimeoutError):
            await within(client.get("k"))
        assert server.commands == [[b"SELECT", b"3"]]
        assert client._protocol is None
        await client.aclose()


async def test_connect_timeout():
    """A listener whose accept queue is full drops new SYNs: connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            queued.append(filler)
        client = LeanRedis(f"redis://127.0.0.1:{port}", timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(exceptions.TimeoutError, match="no answer within 0.3 s"):
            await within(client.execute("PING"))
        assert 0.3 <= loop.time() - started < 1.5
    finally:
        for sock in [*queued, listener]:
            sock.close()


async def test_no_timeout_by_default_waits_for_a_slow_reply():
    async with FakeRedis(delay=0.3) as server:
        client = LeanRedis(server.url)
        assert await within(client.execute("PING")) == b"OK"
        assert client._protocol.watchdog is None
        await client.aclose()


async def test_watchdog_is_idle_when_nothing_is_awaited(lean):
    lean.timeout = 0.2
    assert await within(lean.execute("PING")) == b"PONG"  # connected with a 0.2 s timeout
    await asyncio.sleep(0.5)  # idle for longer than the timeout: nothing to fail
    assert not lean._protocol.closed
    assert lean._protocol.watchdog is None
    assert await within(lean.execute("PING")) == b"PONG"


# --- arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("plain", b"plain"),
        ("héllo ✓", "héllo ✓".encode()),
        ("", b""),
        (b"\x00binary\r\n\xff", b"\x00binary\r\n\xff"),
        (42, b"42"),
        (-7, b"-7"),
        (0, b"0"),
        (2**70, b"1180591620717411303424"),
        (1.5, b"1.5"),
        (0.1, b"0.1"),
        (-2.25, b"-2.25"),
    ],
)
async def test_argument_encoding_round_trip(lean, sync, prefix, value, stored):
    key = prefix + "ключ"  # a non-ASCII key too
    assert await within(lean.set(key, value)) is True
    assert await within(lean.get(key)) == stored
    assert sync.get(key) == stored
    assert await within(lean.get(key.encode())) == stored  # the same key, as bytes


async def test_float_argument_is_usable_as_a_number(lean, prefix):
    assert await within(lean.execute("INCRBYFLOAT", prefix + "f", 1.25)) == b"1.25"
    assert await within(lean.execute("INCRBYFLOAT", prefix + "f", 0.5)) == b"1.75"


@pytest.mark.parametrize("value", [True, False, None, 1j, ["list"]])
async def test_unsupported_argument_raises_data_error(lean, sync, prefix, value):
    with pytest.raises(exceptions.DataError):
        await within(lean.set(prefix + "k", value))
    assert sync.exists(prefix + "k") == 0


async def test_connection_stays_usable_after_a_data_error(lean, sync, prefix):
    """A command that cannot be packed is not sent: it must not take the reply of
    the next command."""
    sync.set(prefix + "k", "v")
    with pytest.raises(exceptions.DataError):
        await within(lean.execute("SET", prefix + "k", True))
    assert not lean._protocol.pending  # no reply is awaited for it
    assert await within(lean.get(prefix + "k")) == b"v"
    assert await within(lean.execute("ECHO", "next")) == b"next"


# --- shared_redis.async_redis ------------------------------------------------------------


@pytest.fixture
def fresh_clients(monkeypatch):
    """shared_redis.async_redis() with no client remembered for any loop (restored after)."""
    monkeypatch.setattr(shared_redis, "_last", (None, None))
    monkeypatch.setattr(shared_redis, "_async_clients", weakref.WeakKeyDictionary())


def test_supports_only_plain_tcp_urls():
    assert redis_client.supports("redis://127.0.0.1:6379/0")
    assert not redis_client.supports("rediss://127.0.0.1:6379/0")
    assert not redis_client.supports("unix:///tmp/redis.sock")


async def test_async_redis_is_lean_for_redis_urls_one_per_loop(settings, fresh_clients):
    settings.REDIS_URL = URL
    client = shared_redis.async_redis()
    try:
        assert isinstance(client, LeanRedis)
        assert (client.host, client.port, client.db) == ("127.0.0.1", 6379, DB)
        assert client.timeout == settings.REDIS_TIMEOUT == 5.0
        assert shared_redis.async_redis() is client
        assert await within(client.execute("PING")) == b"PONG"

        def in_another_loop():
            async def get():
                return shared_redis.async_redis()

            return asyncio.run(get())

        other = await within(asyncio.to_thread(in_another_loop))
        assert isinstance(other, LeanRedis) and other is not client
        assert other._loop is not client._loop
        assert shared_redis.async_redis() is client  # this loop's client, remembered per loop
    finally:
        await client.aclose()


async def test_async_redis_uses_redis_py_for_other_urls(settings, fresh_clients):
    settings.REDIS_URL = f"unix:///tmp/no-such-redis-{uuid.uuid4().hex}.sock?db={DB}"
    client = shared_redis.async_redis()
    assert isinstance(client, aredis.Redis) and not isinstance(client, LeanRedis)
    assert shared_redis.async_redis() is client
    await client.aclose()  # never connected


async def test_async_redis_is_none_without_a_url(settings, fresh_clients):
    settings.REDIS_URL = ""
    assert shared_redis.async_redis() is None
    assert not shared_redis.enabled()


# --- the request path when Redis hangs ---------------------------------------------


def test_a_hung_redis_gives_v1_a_json_500_after_the_timeout(live_gateway, proxy_world, upstream, monkeypatch, caplog):
    """A listener that never accepts still completes the TCP handshake (the
    kernel queues the connection): commands are sent and nothing ever answers."""
    silent = socket.create_server(("127.0.0.1", 0))
    clients = {}

    def hung_redis():
        loop = asyncio.get_running_loop()
        if loop not in clients:
            clients[loop] = LeanRedis(f"redis://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
        return clients[loop]

    monkeypatch.setattr(shared_redis, "async_redis", hung_redis)
    try:
        started = time.monotonic()
        response = httpx.post(
            live_gateway.v1 + "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
            headers={"Authorization": f"Bearer {proxy_world.member_raw}"},
            timeout=10,
        )
        waited = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert b"Traceback" not in response.content and b"Redis" not in response.content
    assert 0.3 <= waited < 5
    assert "Redis sent no reply within 0.3 s" in caplog.text  # logged, with the request id
