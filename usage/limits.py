"""Admission control: token quotas, USD budgets, RPM/TPM, parallel requests.

Every request is admitted in one atomic step across every level that applies
(key, user, tenant; tokens, USD, requests and tokens per minute, concurrency):
it reserves on all of them or on none. With Redis that step is one Lua script,
shared by every process; without it, a synchronous function (nothing else runs
on the event loop meanwhile). After the call, settlement replaces each
reservation by the real usage, once per request (a marker makes it idempotent),
and, with Redis, enqueues the usage record in the same round trip.

Rules, the same for every counter: a request is refused when the counter has
already reached its limit ("used up"); otherwise its estimate is reserved. So
past a quota a level can overshoot by at most the requests admitted while
under it: each of those reserved its estimate first, so at most one request
(the last one admitted) ends past the limit, plus whatever in-flight requests
use beyond their estimate (none when `max_tokens` is set).

Quota and budget counters that are missing (first use, Redis restarted or
flushed, a new process without Redis) are rebuilt from the usage table before
admission, so a quota is never silently reset.

The counter engine itself (the Lua scripts, the in-memory store, reserve and
settle) is `core.counters`; a provider's own RPM/TPM use it too
(`providers.limits`). This module knows which counters a key's request must
pass, how to rebuild them from usage records, and what a refusal says.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from channels.db import database_sync_to_async
from django.db.models import F, Sum
from django.utils import timezone

from accounts.keycache import KeyInfo
from core import counters, metrics
from core.counters import Check
from core.errors import GatewayError
from core.singleflight import SingleFlight

NANO = 10**9  # budgets are counted in integer nano-USD, so counters stay integers
WINDOW = 60  # seconds in a rate-limit window
PARALLEL_TTL = 600  # a crashed process's in-flight counts fade out after this
USAGE_QUEUE = "gw:usage:queue"
LEVEL_FIELDS = {"key": "key_id", "user": "user_id", "tenant": "tenant_id"}


@dataclass(slots=True)
class QuotaCheck(Check):
    """A token quota or USD budget: rebuilt from the usage table when its counter is missing."""

    must_exist: bool = True
    rebuild_from: datetime | None = None  # usage since then counts (None: all time)
    owner_id: int | None = None


@dataclass
class Admission:
    checks: list[Check]
    values: list[int]
    tokens: int  # reserved estimate
    nano_usd: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def period_of(period: str, now: datetime) -> tuple[str, datetime | None, int]:
    """(counter suffix, period start, counter TTL) of a quota period, in UTC."""
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
        return f"d{start:%Y%m%d}", start, int((end - now).total_seconds()) + 3600
    if period == "monthly":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return f"m{start:%Y%m}", start, int((end - now).total_seconds()) + 3600
    return "t", None, 0


def to_nano(usd: Decimal | float | str) -> int:
    return int(Decimal(str(usd)) * NANO)


def plan(
    key: KeyInfo, tokens: int, nano_usd: int, limits: dict, now: datetime | None = None
) -> tuple[list[Check], dict]:
    """The counters this request must pass, and the key's rpm/tpm for its headers."""
    now = now or timezone.now()
    minute = int(now.timestamp()) // WINDOW
    checks: list[Check] = []
    header_limits: dict = {"minute": minute}
    periods: dict[str, tuple] = {}  # each period's bounds computed once per request
    levels = (
        ("key", key.id, key.key_limits),
        ("user", key.user_id, key.user_limits),
        ("tenant", key.tenant_id, key.tenant_limits),
    )
    for level, owner, own in levels:
        quota, budget = own.get("token_quota"), own.get("budget_nano")
        if quota is not None or budget is not None:
            period = own.get("quota_period") or "total"
            if period not in periods:
                periods[period] = period_of(period, now)
            suffix, start, ttl = periods[period]
            prefix = f"gw:q:{level}:{owner}:{suffix}"
        if quota is not None:
            checks.append(
                QuotaCheck(f"{prefix}:t", "tokens", level, quota, tokens, ttl, rebuild_from=start, owner_id=owner)
            )
        if budget is not None:
            checks.append(
                QuotaCheck(f"{prefix}:c", "usd", level, budget, nano_usd, ttl, rebuild_from=start, owner_id=owner)
            )
        rpm = own.get("rpm") or (limits.get("default_key_rpm") if level == "key" else None)
        tpm = own.get("tpm") or (limits.get("default_key_tpm") if level == "key" else None)
        if rpm:
            checks.append(Check(f"gw:r:{level}:{owner}:{minute}", "rpm", level, rpm, 1, WINDOW * 2))
        if tpm:
            checks.append(Check(f"gw:k:{level}:{owner}:{minute}", "tpm", level, tpm, tokens, WINDOW * 2))
        if level == "key":
            header_limits.update(rpm=rpm, tpm=tpm)
    if key.max_parallel:
        checks.append(Check(f"gw:p:key:{key.id}", "parallel", "key", key.max_parallel, 1, PARALLEL_TTL))
    if limits.get("max_concurrent_requests"):
        checks.append(Check("gw:p:global", "parallel", "global", limits["max_concurrent_requests"], 1, PARALLEL_TTL))
    return checks, header_limits


def refusal(check: Check, now: float) -> GatewayError:
    metrics.refused(check.level, check.kind)
    if check.kind in ("tokens", "usd"):
        what = "token quota" if check.kind == "tokens" else "USD budget"
        return GatewayError("quota_exceeded", f"The {what} of this {check.level} is used up.")
    retry_after = 1 if check.kind == "parallel" else max(1, WINDOW - int(now) % WINDOW)
    what = {"rpm": "requests per minute", "tpm": "tokens per minute", "parallel": "parallel requests"}[check.kind]
    return GatewayError(
        "rate_limited",
        f"Rate limit reached: {what} of this {check.level}.",
        headers={"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )


def rate_headers(checks: list[Check], values: list[int], header_limits: dict) -> list[tuple[bytes, bytes]]:
    """OpenAI's and the usual X-RateLimit-* headers for the key's own windows."""
    headers = []
    reset = str((header_limits["minute"] + 1) * WINDOW).encode()
    for check, value in zip(checks, values, strict=False):
        if check.level != "key":
            continue
        remaining = str(max(0, check.limit - value)).encode()
        if check.kind == "rpm":
            headers += [
                (b"x-ratelimit-limit", str(check.limit).encode()),
                (b"x-ratelimit-remaining", remaining),
                (b"x-ratelimit-reset", reset),
                (b"x-ratelimit-limit-requests", str(check.limit).encode()),
                (b"x-ratelimit-remaining-requests", remaining),
            ]
        elif check.kind == "tpm":
            headers += [
                (b"x-ratelimit-limit-tokens", str(check.limit).encode()),
                (b"x-ratelimit-remaining-tokens", remaining),
            ]
    return headers


# --- rebuilding quota counters from the usage table -------------------------


def usage_since(level: str, owner: int, since: datetime | None) -> tuple[int, int]:
    """(tokens, nano-USD) used by a key, user or tenant since a time (None: ever)."""
    from usage.models import UsageRecord

    rows = UsageRecord.objects.filter(**{LEVEL_FIELDS[level]: owner}, cached=False)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    totals = rows.aggregate(tokens=Sum(F("input_tokens") + F("output_tokens")), cost=Sum("cost_usd"))
    return int(totals["tokens"] or 0), to_nano(totals["cost"] or 0)


def rebuilt_value(check: QuotaCheck) -> int:
    tokens, nano_usd = usage_since(check.level, check.owner_id, check.rebuild_from)
    return tokens if check.kind == "tokens" else nano_usd


# --- admission and settlement -------------------------------------------------

_rebuilding = SingleFlight()


async def _seed_missing(missing: list[Check]) -> None:
    for check in missing:
        # Requests that find the same counter missing at once rebuild it once.
        await _rebuilding.run(check.key, partial(_seed, check))


async def _seed(check: QuotaCheck) -> None:
    await counters.seed(check, await database_sync_to_async(rebuilt_value)(check))


async def admit(key: KeyInfo, tokens: int, nano_usd: int, limits: dict) -> Admission:
    """Reserve `tokens` and `nano_usd` on every level, or raise 403/429."""
    checks, header_limits = plan(key, tokens, nano_usd, limits)
    for _ in range(3):  # a counter missing twice in a row (flushed meanwhile) is rebuilt again
        status, index, values = await counters.reserve(checks)
        if status == 1:
            return Admission(checks, values, tokens, nano_usd, headers=rate_headers(checks, values, header_limits))
        if status == 0:
            raise refusal(checks[index], time.time())
        await _seed_missing(await counters.missing(checks))
    raise GatewayError("rate_limited", "Could not read quota counters; try again.", headers={"Retry-After": "1"})


def adjustments(
    admission: Admission | None, provider_limits: list[Check], tokens: int, nano_usd: int
) -> list[tuple[str, int]]:
    """What settlement adds to each counter: real usage minus reservation, the
    concurrency slots back, and to the serving provider's TPM window (which
    reserved nothing) all of it."""
    deltas = [(check.key, tokens) for check in provider_limits if check.kind == "tpm"]
    if admission is None:
        return deltas
    for check in admission.checks:
        if check.kind in ("tokens", "tpm"):
            deltas.append((check.key, tokens - admission.tokens))
        elif check.kind == "usd":
            deltas.append((check.key, nano_usd - admission.nano_usd))
        elif check.kind == "parallel":
            deltas.append((check.key, -1))
    return deltas


async def settle(
    request_id: str,
    admission: Admission | None,
    tokens: int,
    nano_usd: int,
    record: bytes,
    provider_limits: list[Check] = (),
) -> bool:
    """Replace the reservation by real usage (once per request) and, with
    Redis, queue the usage record in the same round trip. Returns False when
    this request was already settled."""
    deltas = adjustments(admission, list(provider_limits), tokens, nano_usd)
    return await counters.settle(f"gw:settled:{request_id}", deltas, USAGE_QUEUE, record)


def estimate_prompt_tokens(text: str) -> int:
    """Cheap estimate (about 4 characters a token) for when the upstream reports none."""
    return max(1, len(text) // 4) if text else 0


def completion_allowance(body: dict, cap_fields: tuple[str, ...], limits: dict) -> int:
    """Output tokens to reserve: the request's own cap (the first of `cap_fields`
    it sets), else `limits.default_max_tokens`; 0 for an endpoint without output."""
    if not cap_fields:
        return 0
    for name in cap_fields:
        if body.get(name):
            return body[name]
    return limits.get("default_max_tokens", 1024)


def estimate_cost_nano(price: tuple[float, float, float] | None, prompt_tokens: int, completion_tokens: int) -> int:
    if price is None:
        return 0
    return math.ceil((prompt_tokens * price[0] + completion_tokens * price[1]) * NANO / 1_000_000)
