"""Cost and tokens per day, for the admin's usage chart and dashboard.

`per_day()` reads one `created_at` window (grouped by day in SQL, see
`usage.reports.timeseries`) and gives one entry per calendar day, days without
records too; `chart_data()` shapes the entries for Chart.js as unfold's chart
component draws it (a `data-value` attribute: no script of our own on the page).
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from usage import reports

COST_COLOR = "var(--color-primary-600)"
TOKENS_COLOR = "var(--color-primary-300)"


def per_day(days: int, tenant_id: int | None = None) -> list[dict]:
    """Today and the `days` days before it, oldest first: `{day, cost, tokens,
    requests, cost_pct, tokens_pct}`, the percentages of the busiest day's."""
    series = reports.timeseries(reports.last_days(days, tenant_id=tenant_id), "day")
    by_day = {timezone.localdate(row["timestamp"]): row for row in series}
    today = timezone.localdate()
    entries = []
    for offset in range(days, -1, -1):  # the window starts part-way through its first day
        day = today - timedelta(days=offset)
        row = by_day.get(day, {})
        entries.append(
            {
                "day": day,
                "cost": row.get("cost_usd", 0.0),
                "tokens": row.get("total_tokens", 0),
                "requests": row.get("requests", 0),
            }
        )
    top_cost = max((entry["cost"] for entry in entries), default=0) or 1
    top_tokens = max((entry["tokens"] for entry in entries), default=0) or 1
    for entry in entries:
        entry["cost_pct"] = round(100 * entry["cost"] / top_cost, 1)
        entry["tokens_pct"] = round(100 * entry["tokens"] / top_tokens, 1)
    return entries


def chart_data(entries: list[dict]) -> str:
    """Cost as bars on the left axis, tokens as a line on the right one (JSON)."""
    return json.dumps(
        {
            "labels": [entry["day"].strftime("%b %d") for entry in entries],
            "datasets": [
                {
                    "label": "Cost (USD)",
                    "data": [round(entry["cost"], 6) for entry in entries],
                    "backgroundColor": COST_COLOR,
                    "borderRadius": 4,
                    "yAxisID": "cost",
                    "order": 2,
                },
                {
                    "type": "line",
                    "label": "Tokens",
                    "data": [entry["tokens"] for entry in entries],
                    "borderColor": TOKENS_COLOR,
                    "backgroundColor": TOKENS_COLOR,
                    "borderWidth": 2,
                    "pointRadius": 2,
                    "tension": 0.3,
                    "yAxisID": "tokens",
                    "order": 1,
                },
            ],
        }
    )


def chart_options() -> str:
    """Chart.js options (JSON, so no functions): two y axes, a legend, tooltips per day."""
    # `format`: Intl.NumberFormat options for the tick labels (no exponents for fractions of a cent).
    ticks = {"color": "#9ca3af", "format": {"maximumSignificantDigits": 3}}
    axis = {"beginAtZero": True, "ticks": ticks, "border": {"display": False}}
    return json.dumps(
        {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {
                "legend": {"display": True, "position": "top", "align": "end", "labels": {"color": "#9ca3af"}},
                "tooltip": {"enabled": True},
            },
            "scales": {
                "x": {"grid": {"display": False}, "ticks": {"color": "#9ca3af", "maxTicksLimit": 12}},
                "cost": {**axis, "position": "left", "title": {"display": True, "text": "USD", "color": "#9ca3af"}},
                "tokens": {
                    **axis,
                    "position": "right",
                    "grid": {"drawOnChartArea": False},
                    "title": {"display": True, "text": "tokens", "color": "#9ca3af"},
                },
            },
        }
    )
