"""What tenants, users and keys have spent, for the admin's account pages and dashboard.

A quota or budget counts over its owner's period (`usage.limits.period_of`):
since UTC midnight for `daily`, since the 1st of the month for `monthly`,
ever for `total`; cached answers use no quota (`usage.stats.quota_use` is the
same rule for one owner). `period_use()` answers for a whole changelist page
in one grouped query, each owner bounded by its own window through the
`(key_id|user_id|tenant_id, created_at)` indexes; `top()` ranks one level's
owners over a window of `created_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from usage.limits import LEVEL_FIELDS, period_of
from usage.models import UsageRecord
from usage.reports import window

WINDOW_NAMES = {"daily": "today", "monthly": "this month", "total": "all time"}


@dataclass(frozen=True)
class PeriodUse:
    """An owner's tokens and cost over `window` ("today", "this month", "all time");
    the ratios are of its token quota and USD budget, None where it sets none
    (or where the window is not its quota period)."""

    window: str
    tokens: int
    cost_usd: float
    token_quota: int | None
    budget_usd: float | None

    @property
    def tokens_ratio(self) -> float | None:
        return self.tokens / self.token_quota if self.token_quota else None

    @property
    def budget_ratio(self) -> float | None:
        return self.cost_usd / self.budget_usd if self.budget_usd else None


def period_use(level: str, owners, now: datetime | None = None, *, bounded: bool = False) -> dict[int, PeriodUse]:
    """Use of each owner (tenants, users or keys: instances with the limit
    fields) in its current quota period, by primary key. One query.

    `bounded=True` never reads further back than the start of this month: an
    owner whose period is `total` is then summed over this month only and its
    quota ratios are left out. For lists of tenants and users, whose all-time
    rows together are most of the table."""
    now = now or timezone.now()
    field = LEVEL_FIELDS[level]
    windows: dict[int, tuple[str, datetime | None]] = {}
    for owner in owners:
        period = owner.quota_period or "total"
        if bounded and period == "total":
            period = "monthly"
        windows[owner.pk] = (period, period_of(period, now)[1])
    if not windows:
        return {}
    by_start: dict[datetime | None, list[int]] = {}
    for pk, (_, start) in windows.items():
        by_start.setdefault(start, []).append(pk)
    rows = Q()
    for start, pks in by_start.items():
        rows |= Q(**{f"{field}__in": pks}) & (Q(created_at__gte=start) if start is not None else Q())
    sums = {
        row[field]: row
        for row in UsageRecord.objects.filter(rows, cached=False)
        .values(field)
        .annotate(tokens=Sum(F("input_tokens") + F("output_tokens")), cost=Sum("cost_usd"))
        .order_by()
    }
    uses = {}
    for owner in owners:
        period = windows[owner.pk][0]
        own_period = period == (owner.quota_period or "total")
        row = sums.get(owner.pk, {})
        budget = owner.budget_usd
        uses[owner.pk] = PeriodUse(
            window=WINDOW_NAMES[period],
            tokens=int(row.get("tokens") or 0),
            cost_usd=float(row.get("cost") or 0),
            token_quota=owner.token_quota if own_period else None,
            budget_usd=float(budget) if budget is not None and own_period else None,
        )
    return uses


def usd(amount: float) -> str:
    """A USD amount as the admin shows it: cents from $1 up, more digits below
    (a day of a cheap model costs fractions of a cent)."""
    amount = float(amount)
    if amount == 0 or abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.4f}" if abs(amount) >= 0.01 else f"${amount:.6f}"


def top(level: str, since: datetime, limit: int = 5) -> list[dict]:
    """The `limit` owners of a level (tenant, user, key) that spent most since
    `since`: `{owner_id, cost_usd, tokens, requests}`, most expensive first."""
    field = LEVEL_FIELDS[level]
    rows = (
        window(start=since)
        .exclude(**{f"{field}__isnull": True})
        .values(field)
        .annotate(cost=Sum("cost_usd"), tokens=Sum(F("input_tokens") + F("output_tokens")), requests=Count("*"))
        .order_by("-cost", "-requests", field)[:limit]
    )
    return [
        {
            "owner_id": row[field],
            "cost_usd": float(row["cost"] or 0),
            "tokens": int(row["tokens"] or 0),
            "requests": row["requests"],
        }
        for row in rows
    ]
