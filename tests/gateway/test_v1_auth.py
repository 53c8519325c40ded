"""Authentication on /v1: all three headers, one 401 for every refusal,
revocation seen within 2 seconds, and no database query on a warm request."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.db.backends import utils as db_utils
from django.utils import timezone

from accounts import keycache
from usage import recorder
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
INVALID = {
    "error": {
        "message": "Invalid or missing API key.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def post(live_gateway, headers: dict, path: str = "/chat/completions", json=CHAT) -> httpx.Response:
    return httpx.post(live_gateway.v1 + path, json=json, headers=headers, timeout=10)


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key", "X-Service-Key"])
def test_each_header_authenticates(live_gateway, proxy_world, upstream, header):
    value = f"Bearer {proxy_world.member_raw}" if header == "Authorization" else proxy_world.member_raw
    assert post(live_gateway, {header: value}).status_code == 200


@pytest.mark.parametrize(
    "case", ["missing", "unknown", "malformed", "revoked", "expired", "disabled_user", "disabled_tenant"]
)
def test_every_refusal_is_the_same_401(live_gateway, proxy_world, upstream, case):
    world = proxy_world
    raw = world.member_raw
    if case == "missing":
        raw = None
    elif case == "unknown":
        raw = "llm_" + "f" * 32
    elif case == "malformed":
        raw = "sk-whatever"
    elif case == "revoked":
        world.member_key.revoke()
    elif case == "expired":
        world.member_key.expires_at = timezone.now() - timedelta(seconds=1)
        world.member_key.save()
    elif case == "disabled_user":
        world.member.is_active = False
        world.member.save()
    elif case == "disabled_tenant":
        world.acme.is_active = False
        world.acme.save()
    response = post(live_gateway, {"Authorization": f"Bearer {raw}"} if raw else {})
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["x-request-id"]


def test_bootstrap_admin_key_is_not_a_client_key(live_gateway, proxy_world, upstream):
    from tests.conftest import ADMIN_KEY

    assert post(live_gateway, {"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 401


def test_revoked_key_is_refused_within_two_seconds_after_use(live_gateway, proxy_world, upstream):
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    assert post(live_gateway, headers).status_code == 200  # now cached
    proxy_world.member_key.revoke()
    deadline = time.monotonic() + 2
    while post(live_gateway, headers).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted after 2 s"
        time.sleep(0.1)


def test_rotated_key_old_secret_refused_new_accepted(live_gateway, proxy_world, upstream):
    old = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    assert post(live_gateway, old).status_code == 200
    new_raw = proxy_world.member_key.rotate()
    time.sleep(1.1)
    assert post(live_gateway, old).status_code == 401
    assert post(live_gateway, {"Authorization": f"Bearer {new_raw}"}).status_code == 200


class QueryCounter:
    """Counts SQL statements from every thread (the /v1 path runs its database
    work in a worker thread, where per-connection capture cannot see it)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.lock = threading.Lock()

    def install(self, monkeypatch) -> None:
        original = db_utils.CursorWrapper._execute_with_wrappers
        counter = self

        def counting(self, sql, params, many, executor):
            with counter.lock:
                counter.statements.append(sql)
            return original(self, sql, params, many, executor)

        monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)


def wait_for_usage(key_id: int, count: int) -> int:
    """This key's records once `count` are written (another test's may arrive late: filter)."""
    records = UsageRecord.objects.filter(key_id=key_id)
    deadline = time.monotonic() + 5
    while records.count() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return records.count()


def test_warm_request_makes_no_database_query(live_gateway, proxy_world, upstream, monkeypatch, settings):
    # Widen the cache windows so a slow machine cannot turn this into a test of their expiry.
    settings.ROUTING_REFRESH_SECONDS = 60
    monkeypatch.setattr(keycache, "LOCAL_TTL", 60)
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    assert post(live_gateway, headers).status_code == 200  # warms key and routing caches
    wait_for_usage(proxy_world.member_key.pk, 1)
    # Usage is written by a background task, not the request: pause it while counting.
    monkeypatch.setattr(recorder, "flush_sync", lambda: 0)
    counter = QueryCounter()
    counter.install(monkeypatch)
    for _ in range(3):
        assert post(live_gateway, headers).status_code == 200
    assert counter.statements == []
    monkeypatch.undo()
    # And the paused records are written afterwards.
    assert wait_for_usage(proxy_world.member_key.pk, 4) == 4


def test_concurrent_first_requests_share_one_key_lookup(live_gateway, proxy_world, upstream, monkeypatch):
    """A burst with a key not cached yet (cold start) looks it up once, not once per request."""
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    monkeypatch.setattr(recorder, "flush_sync", lambda: 0)  # no usage writes among the counted statements
    counter = QueryCounter()
    counter.install(monkeypatch)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(client.post(live_gateway.v1 + "/chat/completions", json=CHAT, headers=headers) for _ in range(20))
            )
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 20
    monkeypatch.undo()
    assert wait_for_usage(proxy_world.member_key.pk, 20) == 20  # written here, not into the next test
    key_queries = [sql for sql in counter.statements if "accounts_apikey" in sql]
    assert len(key_queries) == 1, key_queries
