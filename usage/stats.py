"""Recent traffic in figures, from the usage table: what every process wrote, so
the numbers are the same whichever worker answers (a worker's own memory
would see only its share).

`recent()` reads one window (default: the last RECENT_MINUTES) once and
gives a figure set per provider and one for all traffic: requests, successes
and failures, error rate, average/p50/p95 latency, tokens, requests per
minute. A failure is a call answered 5xx (an upstream error, a timeout, no
provider available, an internal error); 4xx are the client's, and 499 (the
client left) is neither. Calls refused before routing (401 is never recorded,
429/403 are) have no provider: they count in the summary only.

`quota_use()` is how much of its budget or token quota a tenant or key has
used this period, from the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from usage.limits import period_of, usage_since
from usage.models import UsageRecord

RECENT_MINUTES = 15
FAILED = Q(status__gte=500)


@dataclass
class Figures:
    total_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    total_tokens: int = 0
    latency_sum_ms: int = 0
    p50_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    minutes: float = RECENT_MINUTES

    @property
    def error_rate(self) -> float:
        answered = self.successful_requests + self.failed_requests
        return self.failed_requests / answered if answered else 0.0

    @property
    def success_rate(self) -> float:
        answered = self.successful_requests + self.failed_requests
        return self.successful_requests / answered if answered else 1.0

    @property
    def avg_response_time_ms(self) -> float:
        return self.latency_sum_ms / self.total_requests if self.total_requests else 0.0

    @property
    def requests_per_minute(self) -> float:
        return self.total_requests / self.minutes if self.minutes else 0.0

    def as_dict(self) -> dict:
        return {
            "total_requests": self.total_requests,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "success_rate": round(self.success_rate, 4),
            "error_rate": round(self.error_rate, 4),
            "avg_response_time": round(self.avg_response_time_ms, 1),
            "p50_latency_ms": round(self.p50_latency_ms, 1),
            "p95_latency_ms": round(self.p95_latency_ms, 1),
            "total_tokens": self.total_tokens,
            "requests_per_minute": round(self.requests_per_minute, 2),
        }


@dataclass
class Recent:
    since: datetime
    minutes: float
    providers: dict[str, Figures]
    summary: Figures


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def recent(
    minutes: float = RECENT_MINUTES,
    now: datetime | None = None,
    *,
    tenant_id: int | None = None,
    percentiles: bool = True,
) -> Recent:
    """Figures per provider and overall for the last `minutes`, of one tenant's
    traffic when `tenant_id` is given. `percentiles=False` leaves p50/p95 at 0
    and skips reading every latency of the window (a health check polled every
    few seconds needs only the counts)."""
    now = now or timezone.now()
    since = now - timedelta(minutes=minutes)
    rows = UsageRecord.objects.filter(created_at__gte=since, created_at__lte=now)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    totals = (
        rows.values("provider")
        .annotate(
            total=Count("id"),
            failed=Count("id", filter=FAILED),
            succeeded=Count("id", filter=Q(status__lt=400)),
            tokens=Sum(F("input_tokens") + F("output_tokens")),
            latency=Sum("latency_ms"),
        )
        .order_by()
    )
    providers: dict[str, Figures] = {}
    summary = Figures(minutes=minutes)
    for row in totals:
        figures = Figures(
            total_requests=row["total"],
            successful_requests=row["succeeded"],
            failed_requests=row["failed"],
            total_tokens=int(row["tokens"] or 0),
            latency_sum_ms=int(row["latency"] or 0),
            minutes=minutes,
        )
        if row["provider"]:
            providers[row["provider"]] = figures
        for name in ("total_requests", "successful_requests", "failed_requests", "total_tokens", "latency_sum_ms"):
            setattr(summary, name, getattr(summary, name) + getattr(figures, name))
    if not percentiles:
        return Recent(since=since, minutes=minutes, providers=providers, summary=summary)
    # Percentiles from the window's latencies, read once (a window is minutes of
    # traffic; the created_at index bounds the read).
    latencies: dict[str, list[int]] = {}
    everything: list[int] = []
    for provider, latency in rows.values_list("provider", "latency_ms").order_by():
        everything.append(latency)
        if provider:
            latencies.setdefault(provider, []).append(latency)
    for provider, values in latencies.items():
        values.sort()
        providers[provider].p50_latency_ms = percentile(values, 0.5)
        providers[provider].p95_latency_ms = percentile(values, 0.95)
    everything.sort()
    summary.p50_latency_ms = percentile(everything, 0.5)
    summary.p95_latency_ms = percentile(everything, 0.95)
    return Recent(since=since, minutes=minutes, providers=providers, summary=summary)


def quota_use(level: str, owner, now: datetime | None = None) -> dict[str, float | None]:
    """How much of its USD budget and token quota a tenant, user or key (`owner`,
    a model instance with the limit fields) has used in its current period, as
    ratios (None where it sets no limit)."""
    now = now or timezone.now()
    _, start, _ = period_of(owner.quota_period or "total", now)
    tokens, nano_usd = usage_since(level, owner.pk, start)
    budget = float(owner.budget_usd) if owner.budget_usd is not None else None
    return {
        "tokens_used": tokens,
        "cost_used_usd": nano_usd / 1e9,
        "tokens_used_ratio": tokens / owner.token_quota if owner.token_quota else None,
        "budget_used_ratio": (nano_usd / 1e9) / budget if budget else None,
    }
