"""Aggregations over usage records, for the usage API and the admin chart.

Every report starts from `window()`, which bounds the rows by `created_at` (and
by tenant for a tenant admin) so the database can use the `created_at` or
`(tenant_id, created_at)` index. All arithmetic over rows happens in SQL; Python
only shapes the aggregated groups.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from accounts.models import ApiKey
from usage.models import UsageRecord

# API name -> (name in the answer, column) pairs it groups by. A customer is a
# username within a tenant: two tenants' "alice" are two customers.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "provider": (("provider", "provider"),),
    "service": (("service", "service"),),
    "model": (("model", "requested_model"),),
    "key": (("key_id", "key_id"),),
    "customer": (("tenant_id", "tenant_id"), ("username", "username")),
}
BUCKETS = ("hour", "day")
ERROR = Q(status__gte=400)
# PostgreSQL's default work_mem (4 MB) makes a GROUP BY over a month of records
# sort on disk; a report may hash and sort in memory, within its own transaction.
REPORT_WORK_MEM = "64MB"


def window(*, start: datetime, end: datetime | None = None, tenant_id: int | None = None) -> QuerySet[UsageRecord]:
    """Records from `start` (inclusive) to `end` (exclusive), of one tenant if given."""
    rows = UsageRecord.objects.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    # Meta.ordering would otherwise sneak into some aggregate queries.
    return rows.order_by()


def last_days(days: int, tenant_id: int | None = None) -> QuerySet[UsageRecord]:
    return window(start=timezone.now() - timedelta(days=days), tenant_id=tenant_id)


@contextmanager
def roomy_work_mem() -> Iterator[None]:
    """Let the queries run inside hash and sort in REPORT_WORK_MEM (PostgreSQL; this transaction only)."""
    if connection.vendor != "postgresql":
        yield
        return
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [REPORT_WORK_MEM])
        previous = cursor.fetchone()[0]
        yield
        if nested:
            # SET LOCAL lasts until the outer transaction ends, not the savepoint: put it back.
            cursor.execute("SELECT set_config('work_mem', %s, true)", [previous])


def _totals() -> dict:
    # SUM of latency rather than AVG: an integer sum is a cheaper aggregate state
    # per group than AVG's array (it shows on tens of thousands of groups).
    return {
        "requests": Count("*"),
        "input_tokens": Sum("input_tokens"),
        "output_tokens": Sum("output_tokens"),
        "cached_tokens": Sum("cached_tokens"),
        "cost_usd": Sum("cost_usd"),
        "errors": Count("id", filter=ERROR),
        "latency_ms": Sum("latency_ms"),
    }


def _shape(row: dict) -> dict:
    """Fill the sums an empty group leaves NULL and make numbers JSON-friendly."""
    for name in ("input_tokens", "output_tokens", "cached_tokens"):
        row[name] = row[name] or 0
    row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    row["cost_usd"] = float(row["cost_usd"] or 0)
    latency = row.pop("latency_ms") or 0
    row["avg_latency_ms"] = round(latency / row["requests"], 1) if row["requests"] else 0.0
    return row


def summary(rows: QuerySet[UsageRecord]) -> dict:
    totals = rows.aggregate(
        total_requests=Count("id"),
        total_cost_usd=Sum("cost_usd"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        cached_requests=Count("id", filter=Q(cached=True)),
        error_requests=Count("id", filter=ERROR),
    )
    total = totals["total_requests"]
    return {
        "total_requests": total,
        "total_cost_usd": float(totals["total_cost_usd"] or 0),
        "total_tokens": (totals["input_tokens"] or 0) + (totals["output_tokens"] or 0),
        "cached_requests": totals["cached_requests"],
        "error_requests": totals["error_requests"],
        "cache_hit_rate": totals["cached_requests"] / total if total else 0.0,
    }


def grouped(rows: QuerySet[UsageRecord], group: str, limit: int | None = None) -> list[dict]:
    """One row per value of `group` (a key of GROUPS), most expensive first."""
    names = GROUPS[group]
    columns = [column for _, column in names]
    groups = rows.values(*columns).annotate(**_totals()).order_by("-cost_usd", "-requests", *columns)
    if limit is not None:
        groups = groups[:limit]
    with roomy_work_mem():
        return [{name: row.pop(column) for name, column in names} | _shape(row) for row in groups]


def with_key_labels(data: list[dict]) -> list[dict]:
    """Add each key's display prefix and name to `grouped(..., "key")` rows: one query."""
    ids = [row["key_id"] for row in data if row["key_id"] is not None]
    labels = {key["id"]: key for key in ApiKey.objects.filter(pk__in=ids).values("id", "prefix", "name")}
    for row in data:
        label = labels.get(row["key_id"], {})
        row["key_prefix"] = label.get("prefix", "")
        row["key_name"] = label.get("name", "")
    return data


def timeseries(rows: QuerySet[UsageRecord], bucket: str) -> list[dict]:
    """One row per hour or day that has records, oldest first."""
    series = rows.annotate(timestamp=Trunc("created_at", bucket)).values("timestamp").annotate(**_totals())
    with roomy_work_mem():
        return [_shape(row) for row in series.order_by("timestamp")]


def costs_by_user(rows: QuerySet[UsageRecord], by_model: bool = False) -> list[dict]:
    """The seed's `list_costs` rows: per customer (tenant and username), optionally per model."""
    sums = {
        "total_input_tokens": Sum("input_tokens"),
        "total_output_tokens": Sum("output_tokens"),
        "total_cached_tokens": Sum("cached_tokens"),
        "total_requests": Count("*"),
        "total_cost_usd": Sum("cost_usd"),
    }
    users = rows.values("tenant_id", "username").annotate(**sums).order_by("-total_cost_usd", "tenant_id", "username")
    with roomy_work_mem():
        costs = [_shape_costs(row) for row in users]
        if not by_model:
            return costs
        per_model = (
            rows.values("tenant_id", "username", "requested_model")
            .annotate(**sums)
            .order_by("-total_cost_usd", "requested_model")
        )
        models: dict[tuple, list[dict]] = {}
        for row in per_model:
            owner = (row.pop("tenant_id"), row.pop("username"))
            row["model"] = row.pop("requested_model")
            models.setdefault(owner, []).append(_shape_costs(row))
    for user in costs:
        user["model_costs"] = models.get((user["tenant_id"], user["username"]), [])
    return costs


def _shape_costs(row: dict) -> dict:
    for name in ("total_input_tokens", "total_output_tokens", "total_cached_tokens"):
        row[name] = row[name] or 0
    row["total_cost_usd"] = float(row["total_cost_usd"] or 0)
    return row
