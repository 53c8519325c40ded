"""An API key's last_used_at follows its /v1 traffic: set by the usage writer,
once per batch, to the key's newest record, and never moved back."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiKey
from tests.live import flush_usage
from usage import recorder
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def record(key: ApiKey | None, at: datetime) -> dict:
    """A usage record as the /v1 path makes it, of `key` (None: a record without one)."""
    ids = {"tenant_id": key.tenant_id, "user_id": key.user_id, "key_id": key.pk} if key else {}
    return {
        "created_at": at,
        "request_id": uuid.uuid4().hex,
        "endpoint": "chat",
        "status": 200,
        "cost_usd": Decimal(0),
        **ids,
    }


def write_buffered(batch: list[dict]) -> None:
    recorder.write(batch)  # what the in-process buffer flushes (no Redis)


def write_queued(batch: list[dict]) -> None:
    recorder.write_encoded([recorder.encode(fields) for fields in batch])  # what the Redis queue drains


# Both ways a batch reaches the database. `proxy_world` is committed, so the writes
# below run outside any test transaction, as the background writer's do.
writers = pytest.mark.parametrize("write", [write_buffered, write_queued], ids=["buffer", "queue"])


def last_used(key: ApiKey) -> datetime | None:
    key.refresh_from_db(fields=["last_used_at"])
    return key.last_used_at


def test_v1_request_sets_the_keys_last_used_at(live_gateway, proxy_world, upstream):
    before = timezone.now()
    response = httpx.post(
        live_gateway.v1 + "/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {proxy_world.member_raw}"},
        timeout=10,
    )
    after = timezone.now()
    assert response.status_code == 200
    flush_usage()
    used = last_used(proxy_world.member_key)
    assert used is not None and before <= used <= after


@writers
def test_batch_sets_the_keys_newest_time(proxy_world, write):
    now = timezone.now()
    key = proxy_world.member_key
    times = [now - timedelta(minutes=3), now - timedelta(minutes=1), now - timedelta(minutes=2)]
    write([record(key, at) for at in times])
    assert last_used(key) == now - timedelta(minutes=1)


@writers
def test_older_batch_never_moves_last_used_at_back(proxy_world, write):
    now = timezone.now()
    key = proxy_world.member_key
    write([record(key, now)])
    write([record(key, now - timedelta(hours=1)), record(key, now - timedelta(minutes=5))])
    assert last_used(key) == now


@writers
def test_newer_batch_moves_last_used_at_forward(proxy_world, write):
    now = timezone.now()
    key = proxy_world.member_key
    write([record(key, now - timedelta(hours=1))])
    write([record(key, now)])
    assert last_used(key) == now


@writers
def test_batch_updates_its_keys_in_one_statement(proxy_world, write):
    now = timezone.now()
    keys = [proxy_world.member_key, proxy_world.owner_key]
    batch = [record(keys[i % 2], now - timedelta(seconds=i)) for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        write(batch)
    # PostgreSQL: one UPDATE ... FROM unnest(); SQLite: one executemany, logged as "2 times: UPDATE ...",
    # run once per key, not per record.
    updates = [q["sql"] for q in queries.captured_queries if 'UPDATE "accounts_apikey"' in q["sql"]]
    assert len(updates) == 1 and not updates[0].startswith("20 times"), updates
    assert [last_used(key) for key in keys] == [now, now - timedelta(seconds=1)]


@writers
def test_keys_not_in_the_batch_are_untouched(proxy_world, write):
    now = timezone.now()
    earlier = now - timedelta(days=2)
    ApiKey.objects.filter(pk=proxy_world.owner_key.pk).update(last_used_at=earlier)
    write([record(proxy_world.member_key, now)])
    assert last_used(proxy_world.member_key) == now
    assert last_used(proxy_world.owner_key) == earlier
    assert last_used(proxy_world.outsider_key) is None


@writers
def test_records_without_a_key_are_written_and_touch_no_key(proxy_world, write):
    fields = record(None, timezone.now())
    write([fields])
    assert UsageRecord.objects.filter(request_id=fields["request_id"], key_id=None).exists()
    assert not ApiKey.objects.filter(last_used_at__isnull=False).exists()


@writers
def test_failed_last_used_update_keeps_the_records(proxy_world, write, monkeypatch, caplog):
    def failing(cursor, newest):
        cursor.execute("UPDATE no_such_table SET last_used_at = NULL")  # a real database error

    monkeypatch.setattr(recorder, "_update_last_used", failing)
    batch = [record(proxy_world.member_key, timezone.now()) for _ in range(3)]
    with caplog.at_level(logging.ERROR, logger="gateway.usage"):
        write(batch)  # does not raise: the batch is not retried or kept back for this
    written = UsageRecord.objects.filter(request_id__in=[fields["request_id"] for fields in batch])
    assert written.count() == 3
    assert last_used(proxy_world.member_key) is None
    assert "last_used_at" in caplog.text
