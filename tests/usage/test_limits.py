"""Quotas, budgets and rate limits through the real /v1 path: each level,
USD budgets, period roll-over, bursts (one process and two sharing Redis),
and their headers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import time_machine

from tests.live import flush_usage
from tests.mock_upstream import hang
from usage.models import UsageRecord

# The mock answers "mock: <text>"; with this prompt usage is fixed per request.
PROMPT = "count these words"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 10}


def post(live_gateway, raw: str, json=CHAT) -> httpx.Response:
    return httpx.post(
        live_gateway.v1 + "/chat/completions", json=json, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    )


def tokens_per_request(live_gateway, raw: str) -> int:
    usage = post(live_gateway, raw).json()["usage"]
    return usage["prompt_tokens"] + usage["completion_tokens"]


def assert_quota_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("quota_exceeded", "insufficient_quota")


@pytest.mark.parametrize("level", ["key", "user", "tenant"])
def test_token_quota_exhaustion_at_each_level(live_gateway, proxy_world, upstream, level):
    # Measured with another tenant's key: its usage counts on none of the member's levels
    # (a key of the same tenant would count on the tenant's once its record is written).
    per_request = tokens_per_request(live_gateway, proxy_world.outsider_raw)
    owner = {"key": proxy_world.member_key, "user": proxy_world.member, "tenant": proxy_world.acme}[level]
    owner.token_quota = per_request * 2
    owner.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert_quota_refused(post(live_gateway, proxy_world.member_raw))


def test_tenant_quota_binds_every_key_of_the_tenant(live_gateway, proxy_world, upstream):
    proxy_world.acme.token_quota = 1
    proxy_world.acme.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200  # under quota when admitted
    assert_quota_refused(post(live_gateway, proxy_world.owner_raw))
    assert post(live_gateway, proxy_world.outsider_raw).status_code == 200  # another tenant


@pytest.mark.parametrize("level", ["key", "user", "tenant"])
def test_usd_budget_at_each_level(live_gateway, proxy_world, upstream, level):
    owner = {"key": proxy_world.member_key, "user": proxy_world.member, "tenant": proxy_world.acme}[level]
    owner.budget_usd = Decimal("0.000001")  # gpt-4o-mini at $0.15/$0.60 per 1M: a request costs more
    owner.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert_quota_refused(post(live_gateway, proxy_world.member_raw))
    flush_usage()
    record = UsageRecord.objects.filter(key_id=proxy_world.member_key.pk, status=200).get()
    assert record.cost_usd > Decimal("0.000001") and record.priced


def test_daily_quota_rolls_over_at_midnight_utc(live_gateway, proxy_world, upstream):
    proxy_world.member_key.token_quota = 1
    proxy_world.member_key.quota_period = "daily"
    proxy_world.member_key.save()
    with time_machine.travel(datetime(2026, 5, 1, 23, 59, tzinfo=UTC), tick=True):
        assert post(live_gateway, proxy_world.member_raw).status_code == 200
        assert_quota_refused(post(live_gateway, proxy_world.member_raw))
    with time_machine.travel(datetime(2026, 5, 2, 0, 1, tzinfo=UTC), tick=True):
        assert post(live_gateway, proxy_world.member_raw).status_code == 200


def test_monthly_budget_rolls_over(live_gateway, proxy_world, upstream):
    proxy_world.member.budget_usd = Decimal("0.000001")
    proxy_world.member.quota_period = "monthly"
    proxy_world.member.save()
    with time_machine.travel(datetime(2026, 1, 31, 12, 0, tzinfo=UTC), tick=True):
        assert post(live_gateway, proxy_world.member_raw).status_code == 200
        assert_quota_refused(post(live_gateway, proxy_world.member_raw))
    with time_machine.travel(datetime(2026, 2, 1, 0, 0, 5, tzinfo=UTC), tick=True):
        assert post(live_gateway, proxy_world.member_raw).status_code == 200


def test_total_quota_survives_lost_counters(live_gateway, proxy_world, upstream, settings):
    """Redis flushed (or, without Redis, a restarted process): counters are
    rebuilt from the usage table, never reset to zero."""
    per_request = tokens_per_request(live_gateway, proxy_world.owner_raw)
    proxy_world.member_key.token_quota = per_request * 2
    proxy_world.member_key.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    flush_usage()
    assert UsageRecord.objects.filter(key_id=proxy_world.member_key.pk).count() == 2
    if settings.REDIS_URL:
        from core import shared_redis

        shared_redis.sync_redis().flushdb()
    else:
        from core import counters

        counters.memory.reset()
    assert_quota_refused(post(live_gateway, proxy_world.member_raw))


def test_lost_counters_are_rebuilt_once_for_a_burst(live_gateway, proxy_world, upstream, settings, monkeypatch):
    """20 requests that all find the key's quota and budget counters missing
    rebuild each from the usage table once, not once per request."""
    from django.db.backends import utils as db_utils

    proxy_world.member_key.token_quota = 10**9
    proxy_world.member_key.budget_usd = Decimal("1000")
    proxy_world.member_key.save()
    if settings.REDIS_URL:
        from core import shared_redis

        shared_redis.sync_redis().flushdb()
    else:
        from core import counters

        counters.memory.reset()
    statements = []
    original = db_utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, params, many, executor):
        statements.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", counting)
    from usage import recorder

    monkeypatch.setattr(recorder, "flush_sync", lambda: 0)  # no usage writes among the counted statements
    assert asyncio.run(burst(live_gateway.v1 + "/chat/completions", proxy_world.member_raw, 20)) == [200] * 20
    monkeypatch.undo()
    flush_usage()  # this test's records, written here rather than into the next test's tables
    rebuilds = [sql for sql in statements if "SUM" in sql.upper() and "usage_usagerecord" in sql]
    assert len(rebuilds) == 2, rebuilds  # the key's token quota and its USD budget


async def burst(url: str, raw: str, count: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=count)) as client:
        responses = await asyncio.gather(
            *(client.post(url, json=CHAT, headers={"Authorization": f"Bearer {raw}"}) for _ in range(count))
        )
    return [r.status_code for r in responses]


def reservation(live_gateway, proxy_world) -> int:
    """What one request reserves: prompt estimate + max_tokens (read from TPM headers)."""
    proxy_world.owner_key.tpm = 10**9
    proxy_world.owner_key.save()
    response = post(live_gateway, proxy_world.owner_raw)
    return 10**9 - int(response.headers["x-ratelimit-remaining-tokens"])


def test_concurrent_burst_admits_no_more_than_the_quota(live_gateway, proxy_world, upstream, mock_upstream):
    """50 simultaneous requests, quota for 5: the upstream is slow, so all 50
    are admitted or refused before any settles. Bound: ceil(quota / reservation)."""
    per_reservation = reservation(live_gateway, proxy_world)
    proxy_world.member_key.token_quota = per_reservation * 5
    proxy_world.member_key.save()
    mock_upstream.set_default(hang(0.5))
    statuses = asyncio.run(burst(live_gateway.v1 + "/chat/completions", proxy_world.member_raw, 50))
    assert statuses.count(200) == 5
    assert statuses.count(403) == 45


def test_burst_across_two_processes_sharing_redis(live_gateway, proxy_world, upstream, mock_upstream, settings):
    """The same burst split over two gateway processes (this one and a Daphne
    subprocess), both on Redis: the quota holds across them."""
    from core import shared_redis
    from tests.live import DaphneGateway

    if not settings.REDIS_URL:  # the laptop pass has no Redis configured: use the local one for this test
        settings.REDIS_URL = "redis://127.0.0.1:6379/14"
        shared_redis._sync_client = None
    shared_redis.sync_redis().flushdb()
    per_reservation = reservation(live_gateway, proxy_world)
    proxy_world.member_key.token_quota = per_reservation * 5
    proxy_world.member_key.save()
    mock_upstream.set_default(hang(0.5))
    other = DaphneGateway()
    try:

        async def both() -> list[int]:
            halves = await asyncio.gather(
                burst(live_gateway.v1 + "/chat/completions", proxy_world.member_raw, 25),
                burst(other.v1 + "/chat/completions", proxy_world.member_raw, 25),
            )
            return halves[0] + halves[1]

        statuses = asyncio.run(both())
    finally:
        other.stop()
        shared_redis.sync_redis().flushdb()
        shared_redis._sync_client = None
    assert statuses.count(200) == 5
    assert statuses.count(403) == 45


def test_rpm_limit_and_headers(live_gateway, proxy_world, upstream):
    proxy_world.member_key.rpm = 3
    proxy_world.member_key.save()
    remaining = []
    for _ in range(3):
        response = post(live_gateway, proxy_world.member_raw)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        reset = int(response.headers["x-ratelimit-reset"])
        assert time.time() - 1 <= reset <= time.time() + 61
    assert remaining == [2, 1, 0]
    refused = post(live_gateway, proxy_world.member_raw)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 60 and error["retry_after"] == int(
        refused.headers["retry-after"]
    )


def test_default_key_rpm_gives_headers_to_every_response(live_gateway, proxy_world, upstream):
    response = post(live_gateway, proxy_world.member_raw)
    assert response.headers["x-ratelimit-limit"] == "600"
    models = httpx.get(live_gateway.v1 + "/models", headers={"Authorization": f"Bearer {proxy_world.member_raw}"})
    assert models.headers["x-ratelimit-limit"] == "600"
    # Both in one minute window: two requests counted; across a window boundary, one.
    same_window = models.headers["x-ratelimit-reset"] == response.headers["x-ratelimit-reset"]
    assert int(models.headers["x-ratelimit-remaining"]) == (598 if same_window else 599)


def test_tpm_limit_and_token_headers(live_gateway, proxy_world, upstream):
    per_reservation = reservation(live_gateway, proxy_world)
    proxy_world.member_key.tpm = per_reservation * 2
    proxy_world.member_key.save()
    first = post(live_gateway, proxy_world.member_raw)
    assert first.headers["x-ratelimit-limit-tokens"] == str(per_reservation * 2)
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == per_reservation
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    # Settled at real usage (less than reserved), yet the window is not used up until it is.
    responses = [post(live_gateway, proxy_world.member_raw) for _ in range(5)]
    assert responses[-1].status_code == 429
    assert responses[-1].json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("level", ["user", "tenant"])
def test_user_and_tenant_rpm(live_gateway, proxy_world, upstream, level):
    owner = proxy_world.member if level == "user" else proxy_world.acme
    owner.rpm = 1
    owner.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert post(live_gateway, proxy_world.member_raw).status_code == 429


def test_max_parallel_requests_per_key(live_gateway, proxy_world, upstream, mock_upstream):
    proxy_world.member_key.max_parallel = 2
    proxy_world.member_key.save()
    mock_upstream.set_default(hang(0.5))
    statuses = asyncio.run(burst(live_gateway.v1 + "/chat/completions", proxy_world.member_raw, 6))
    assert statuses.count(200) == 2 and statuses.count(429) == 4
    mock_upstream.set_default(None)
    assert post(live_gateway, proxy_world.member_raw).status_code == 200  # slots were given back


def test_global_max_concurrent_requests(live_gateway, proxy_world, upstream, mock_upstream):
    from providers.models import ConfigState

    ConfigState.objects.update_or_create(pk=1, defaults={"data": {"limits": {"max_concurrent_requests": 3}}})
    mock_upstream.set_default(hang(0.5))
    statuses = asyncio.run(burst(live_gateway.v1 + "/chat/completions", proxy_world.member_raw, 8))
    assert statuses.count(200) == 3 and statuses.count(429) == 5


def test_provider_rpm_fails_over_then_429(live_gateway, proxy_world, factory, mock_upstream):
    factory.make_provider("small", base_url=mock_upstream.openai_base, priority=10, rate_limit_rpm=1)
    factory.make_provider("big", base_url=mock_upstream.openai_base, priority=1, rate_limit_rpm=1)
    assert post(live_gateway, proxy_world.member_raw).headers["x-gateway-provider"] == "small"
    assert post(live_gateway, proxy_world.member_raw).headers["x-gateway-provider"] == "big"
    refused = post(live_gateway, proxy_world.member_raw)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"


def test_refused_calls_are_recorded(live_gateway, proxy_world, upstream):
    proxy_world.member_key.rpm = 1
    proxy_world.member_key.save()
    post(live_gateway, proxy_world.member_raw)
    post(live_gateway, proxy_world.member_raw)
    flush_usage()
    statuses = sorted(UsageRecord.objects.filter(key_id=proxy_world.member_key.pk).values_list("status", flat=True))
    assert statuses == [200, 429]
    limited = UsageRecord.objects.get(key_id=proxy_world.member_key.pk, status=429)
    assert limited.error_code == "rate_limited" and limited.input_tokens == 0 and limited.cost_usd == 0


def test_settlement_is_idempotent(live_gateway, proxy_world):
    """Settling the same request twice changes the counters once."""
    from accounts.keycache import KeyInfo
    from usage import limits

    proxy_world.member_key.token_quota = 1000
    proxy_world.member_key.save()
    info = KeyInfo.from_key(proxy_world.member_key)

    async def run() -> list[bool]:
        admission = await limits.admit(info, 100, 0, {})
        first = await limits.settle("req_same", admission, 40, 0, b"")
        second = await limits.settle("req_same", admission, 40, 0, b"")
        again = await limits.admit(info, 0, 0, {})
        return [first, second, again.values[0]]

    first, second, used = asyncio.run(run())
    assert (first, second) == (True, False)
    assert used == 40


def test_unknown_model_costs_zero_and_is_flagged(live_gateway, proxy_world, factory, mock_upstream):
    factory.make_provider("local", base_url=mock_upstream.openai_base, models=["my-private-model"])
    body = {**CHAT, "model": "my-private-model"}
    assert post(live_gateway, proxy_world.member_raw, json=body).status_code == 200
    flush_usage()
    record = UsageRecord.objects.get(key_id=proxy_world.member_key.pk)
    assert record.cost_usd == 0 and not record.priced and record.input_tokens > 0


def test_period_boundaries_are_utc():
    from usage.limits import period_of

    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert period_of("daily", now)[:2] == ("d20260331", datetime(2026, 3, 31, tzinfo=UTC))
    assert period_of("monthly", now)[:2] == ("m202603", datetime(2026, 3, 1, tzinfo=UTC))
    assert period_of("total", now)[:2] == ("t", None)
    assert period_of("daily", now + timedelta(hours=1))[0] == "d20260401"


def test_quotas_and_budgets_on_every_level_at_once(live_gateway, proxy_world, upstream):
    """Six counters to rebuild on first use (tokens and USD on key, user and tenant)."""
    for owner in (proxy_world.member_key, proxy_world.member, proxy_world.acme):
        owner.token_quota = 10**9
        owner.budget_usd = Decimal("1000")
        owner.save()
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
    assert post(live_gateway, proxy_world.member_raw).status_code == 200
