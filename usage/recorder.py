"""Usage records, with no database round trip on the request path.

With Redis, a record is queued in Redis by the same script that settles the
request's quota (before the response completes), so a process that crashes
afterwards loses nothing; a background task in each process drains the queue
in batches, one process at a time (a Redis lock), and `request_id` is unique
so a batch written twice counts once. Without Redis, records wait in a buffer
in this process, flushed every FLUSH_SECONDS and at exit (atexit: Daphne
stops its reactor on SIGTERM and the interpreter exits normally).

Writing a batch also sets each key's `last_used_at` to its newest record in
the batch (one statement per batch), so the request path never writes the key.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import uuid
import weakref
from datetime import datetime
from decimal import Decimal

import orjson
from channels.db import database_sync_to_async
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from accounts.models import ApiKey
from core import shared_redis
from usage import limits
from usage.models import UsageRecord

logger = logging.getLogger("gateway.usage")

FLUSH_SECONDS = 0.5
BATCH = 1000
MAX_BUFFER = 100_000
DRAIN_LOCK = "gw:usage:drain-lock"

# What a record that leaves a field out stores there (the model's defaults; "" for text).
DEFAULTS = {f.attname: f.get_default() for f in UsageRecord._meta.concrete_fields if not f.primary_key}
_buffer: list[dict] = []
_flush_lock = threading.Lock()
_tasks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_atexit_registered = False


def encode(fields: dict) -> bytes:
    return orjson.dumps(fields, default=str)


def decode(raw: bytes) -> dict:
    fields = orjson.loads(raw)
    fields["created_at"] = parse_datetime(fields["created_at"])
    fields["cost_usd"] = Decimal(fields["cost_usd"])
    return fields


def _columns() -> tuple[str, list[str]]:
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(UsageRecord._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({quote('request_id')}) DO NOTHING"
    )
    return sql, names


def _json_insert() -> tuple[str, list]:
    """PostgreSQL: one INSERT ... SELECT over the whole batch sent as one JSON
    array (the first parameter); the server unpacks the rows. A field a record
    leaves out takes the model's default. The same statement answers each key's
    newest created_at in the batch, conflicting rows included (a batch written
    again after a crash still counts), so the batch is neither parsed in Python
    nor sent twice for `_touch_keys`."""
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table = quote(UsageRecord._meta.db_table)
    select, params = [], []
    for f in fields:
        default = DEFAULTS[f.attname]
        if default is None:
            select.append(f"r.{quote(f.column)}")
        else:
            select.append(f"COALESCE(r.{quote(f.column)}, %s)")
            params.append(default)
    key_id, created_at = quote("key_id"), quote("created_at")
    sql = (
        f"WITH batch AS (SELECT * FROM json_populate_recordset(NULL::{table}, %s::json)), "
        f"written AS (INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(select)} FROM batch AS r ON CONFLICT ({quote('request_id')}) DO NOTHING) "
        f"SELECT {key_id}, MAX({created_at}) FROM batch WHERE {key_id} IS NOT NULL GROUP BY {key_id}"
    )
    return sql, params


def write(batch: list[dict]) -> None:
    """Insert a batch; a request_id already there is skipped (a batch written twice)."""
    if connection.vendor == "postgresql":
        _write_json(orjson.dumps(batch, default=str))
        return
    # Plain executemany rather than bulk_create: no model instances, no query compiling.
    sql, names = _columns()
    rows = [tuple(_db_value(fields.get(name, DEFAULTS.get(name))) for name in names) for fields in batch]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        # Inside the records' transaction: SQLite has one writer, whose lock this
        # transaction already holds, so a second transaction would only add a
        # commit. `_touch_keys` runs in a savepoint: if it fails, the records still commit.
        _touch_keys(_newest_by_key(batch))


def write_encoded(batch: list[bytes]) -> None:
    """Insert records as `encode()` made them (the Redis queue's items)."""
    if connection.vendor == "postgresql":
        _write_json(b"[" + b",".join(batch) + b"]")
    else:
        write([decode(item) for item in batch])


def _write_json(array: bytes) -> None:
    sql, params = _json_insert()
    with connection.cursor() as cursor:
        cursor.execute(sql, [array.decode(), *params])
        newest = dict(cursor.fetchall())
    # After the records' statement has committed, in a transaction of its own:
    # the records never wait on a key row another transaction holds (an admin
    # save, touch()) nor roll back with a failed update.
    _touch_keys(newest)


def _newest_by_key(batch: list[dict]) -> dict[int, datetime]:
    newest: dict[int, datetime] = {}
    for fields in batch:
        key_id = fields.get("key_id")
        if key_id is not None and (key_id not in newest or fields["created_at"] > newest[key_id]):
            newest[key_id] = fields["created_at"]
    return newest


def _touch_keys(newest: dict[int, datetime]) -> None:
    """Move each key's last_used_at forward to its newest use in a batch just
    written; never back (a batch written late or twice changes nothing).

    Records come first: a failure here is logged and the batch counts as
    written. Any exception, not only a database error: raised, it would keep
    the batch queued (or buffered) and retried forever for a column that the
    next batch sets anyway.
    """
    if not newest:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _update_last_used(cursor, newest)
    except Exception:
        logger.exception("Could not update last_used_at of %d API keys (their usage records are written)", len(newest))


def _update_last_used(cursor, newest: dict[int, datetime]) -> None:
    quote = connection.ops.quote_name
    table, pk, last_used = quote(ApiKey._meta.db_table), quote("id"), quote("last_used_at")
    if connection.vendor == "postgresql":
        # One statement, two array parameters whatever the number of keys. The
        # WHERE skips rows already newer (and writes no row version for them).
        cursor.execute(
            f"UPDATE {table} AS k SET {last_used} = v.newest "
            f"FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, newest) "
            f"WHERE k.{pk} = v.id AND (k.{last_used} IS NULL OR k.{last_used} < v.newest)",
            [list(newest), list(newest.values())],
        )
        return
    # SQLite: one UPDATE per distinct key (a few per batch), all in the caller's
    # transaction, chosen over one CASE statement for plainness and because SQLite
    # has no round trip and caps the parameters of one statement. Timestamps are
    # stored as text that sorts as time, so `<` compares them correctly.
    cursor.executemany(
        f"UPDATE {table} SET {last_used} = %s WHERE {pk} = %s AND ({last_used} IS NULL OR {last_used} < %s)",
        [(_db_value(at), key_id, _db_value(at)) for key_id, at in newest.items()],
    )


def _db_value(value):
    if isinstance(value, datetime) and connection.vendor == "sqlite":
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, Decimal) and connection.vendor == "sqlite":
        return connection.ops.adapt_decimalfield_value(value, 18, 8)
    return value


async def submit(
    fields: dict, admission: limits.Admission | None, tokens: int, nano_usd: int, provider_limits: list = ()
) -> None:
    """Settle the request's reservation (and the serving provider's TPM) and record its usage, once."""
    with_redis = shared_redis.enabled()
    record = encode(fields) if with_redis else b""
    settled = await limits.settle(fields["request_id"], admission, tokens, nano_usd, record, provider_limits)
    if settled and not with_redis:
        if len(_buffer) >= MAX_BUFFER:
            logger.error("Usage buffer full (database down?): dropping the oldest record")
            _buffer.pop(0)
        _buffer.append(fields)
    _ensure_background_task()


def _ensure_background_task() -> None:
    global _atexit_registered
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        _tasks[loop] = loop.create_task(_run())
    if not _atexit_registered:
        atexit.register(_flush_at_exit)
        _atexit_registered = True


async def _run() -> None:
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            await database_sync_to_async(flush_sync)()
        except Exception:
            logger.exception("Writing usage records failed; will retry")


def _flush_at_exit() -> None:
    try:
        flush_sync()
    except Exception:
        logger.exception("Could not write %d usage records at exit", len(_buffer))


def pending() -> int:
    """Records not written yet (in this process's buffer, or queued in Redis)."""
    if not shared_redis.enabled():
        return len(_buffer)
    redis = shared_redis.sync_redis()
    return redis.llen(limits.USAGE_QUEUE) + (1 if redis.exists(DRAIN_LOCK) else 0)


def flush_sync() -> int:
    """Write what is waiting (buffer, or the Redis queue); returns rows written."""
    return _drain_redis() if shared_redis.enabled() else _flush_buffer()


def _flush_buffer() -> int:
    # One flush at a time: a caller that finds the buffer empty because the
    # background task just took it waits until those rows are committed.
    with _flush_lock:
        if not _buffer:
            return 0
        batch = _buffer[:]
        del _buffer[: len(batch)]
        try:
            write(batch)
        except Exception:
            _buffer[:0] = batch  # keep them for the next try
            raise
        return len(batch)


def _drain_redis() -> int:
    redis = shared_redis.sync_redis()
    token = uuid.uuid4().hex
    if not redis.set(DRAIN_LOCK, token, nx=True, px=30_000):
        return 0  # another process is draining
    written = 0
    try:
        while True:
            raw = redis.lrange(limits.USAGE_QUEUE, 0, BATCH - 1)
            if not raw:
                return written
            write_encoded(raw)
            redis.ltrim(limits.USAGE_QUEUE, len(raw), -1)
            written += len(raw)
            if len(raw) < BATCH:
                # What arrived meanwhile waits for the next turn: chasing the
                # queue wrote a few rows at a time, many times a second.
                return written
    finally:
        if redis.get(DRAIN_LOCK) == token.encode():
            redis.delete(DRAIN_LOCK)
