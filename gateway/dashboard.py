"""The admin's home page: how the gateway is doing, what it is serving and what it costs.

`dashboard_callback` is unfold's DASHBOARD_CALLBACK (settings.UNFOLD): it adds
the figures to the admin index's context, and `templates/admin/index.html`
draws them with unfold's components. Every usage query is bounded by
`created_at` (today, this month, the last 30 days, the recent-traffic window),
so the page costs the same with a million records as with ten. A section is
read only for staff who may view what it shows.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.models import Tenant
from alerts.models import OPEN_STATUSES, Alert
from gateway.health import health_report
from providers.health import provider_states
from usage import charts, reports, spend, stats
from usage.limits import period_of

CHART_DAYS = 30
TOP = 5
OPEN_ALERTS_SHOWN = 10
STATUS_LABELS = {"healthy": "success", "degraded": "warning", "unhealthy": "danger", "disabled": "info"}
CIRCUIT_LABELS = {"closed": "success", "half_open": "warning", "open": "danger"}
SEVERITY_LABELS = {"info": "info", "warning": "warning", "error": "danger", "critical": "danger"}


def dashboard_callback(request, context: dict) -> dict:
    user = request.user
    now = timezone.now()
    context["title"] = "Dashboard"
    context["health"] = health = health_report()[0]
    context["health_label"] = label(health["status"], STATUS_LABELS[health["status"]])
    if user.has_perm("providers.view_provider"):
        context["providers"] = provider_table(stats.recent(now=now))
    if user.has_perm("alerts.view_alert"):
        context["alerts"] = open_alerts()
    if user.has_perm("usage.view_usagerecord"):
        context.update(usage_figures(now))
    return context


def usage_figures(now: datetime) -> dict:
    """Today's totals, this month's top spenders and the per-day chart."""
    today = period_of("daily", now)[1]
    month = period_of("monthly", now)[1]
    days = charts.per_day(CHART_DAYS)
    figures = reports.summary(reports.window(start=today, end=now))
    return {
        "today": figures,
        "today_cost": spend.usd(figures["total_cost_usd"]),
        "today_since": today,
        "month_since": month,
        "top_tenants": top_tenants(month),
        "top_keys": top_keys(month),
        "chart_days": CHART_DAYS,
        "chart_data": charts.chart_data(days),
        "chart_options": charts.chart_options(),
        "chart_url": reverse("admin:usage_usagerecord_chart"),
    }


def label(text: str, variant: str) -> str:
    """A coloured label, as unfold draws them (variant: success, warning, danger, info)."""
    return render_to_string("unfold/helpers/label.html", {"text": text, "variant": variant})


def provider_table(recent: stats.Recent) -> dict:
    """Every provider: enabled, circuit state, and its traffic over the recent window."""
    rows = []
    for state in provider_states():
        figures = recent.providers.get(state.name, stats.Figures(minutes=recent.minutes))
        link = reverse("admin:providers_provider_changelist") + "?" + urlencode({"q": state.name})
        rows.append(
            [
                format_html('<a class="provider-name text-primary-600 font-medium" href="{}">{}</a>', link, state.name),
                state.type,
                label("enabled" if state.enabled else "disabled", "success" if state.enabled else "info"),
                label(state.circuit.replace("_", "-"), CIRCUIT_LABELS[state.circuit]),
                f"{figures.requests_per_minute:.1f}",
                f"{figures.error_rate:.1%}",
                f"{figures.p95_latency_ms:.0f} ms" if figures.total_requests else "—",
            ]
        )
    return {
        "minutes": int(recent.minutes),
        "table": {
            "headers": ["provider", "type", "enabled", "circuit", "requests / min", "error rate", "p95 latency"],
            "rows": rows,
        },
    }


def open_alerts() -> dict:
    """Alerts still open (active or acknowledged), newest first."""
    alerts = Alert.objects.filter(status__in=OPEN_STATUSES)
    shown = list(alerts.order_by("-created_at")[:OPEN_ALERTS_SHOWN])
    rows = [
        [
            label(alert.severity, SEVERITY_LABELS[alert.severity]),
            alert.rule_name,
            alert.message,
            label(alert.status, "danger" if alert.status == "active" else "info"),
            timezone.localtime(alert.created_at).strftime("%Y-%m-%d %H:%M"),
        ]
        for alert in shown
    ]
    return {
        "count": len(shown) if len(shown) < OPEN_ALERTS_SHOWN else alerts.count(),
        "table": {"headers": ["severity", "rule", "message", "status", "since"], "rows": rows},
        "url": reverse("admin:alerts_alert_changelist"),
    }


def top_tenants(since: datetime) -> dict:
    top = spend.top("tenant", since, TOP)
    names = dict(Tenant.objects.filter(pk__in=[row["owner_id"] for row in top]).values_list("pk", "name"))
    rows = [
        [
            _admin_link("accounts_tenant_change", row["owner_id"], names.get(row["owner_id"], f"#{row['owner_id']}")),
            spend.usd(row["cost_usd"]),
            f"{row['tokens']:,}",
            f"{row['requests']:,}",
        ]
        for row in top
    ]
    return {"headers": ["tenant", "cost", "tokens", "requests"], "rows": rows}


def top_keys(since: datetime) -> dict:
    top = spend.top("key", since, TOP)
    labels = {row["key_id"]: row for row in reports.with_key_labels([{"key_id": row["owner_id"]} for row in top])}
    rows = []
    for row in top:
        key = labels[row["owner_id"]]
        text = f"{key['key_prefix']}… {key['key_name']}".strip() if key["key_prefix"] else f"#{row['owner_id']}"
        rows.append(
            [
                _admin_link("accounts_apikey_change", row["owner_id"], text),
                spend.usd(row["cost_usd"]),
                f"{row['tokens']:,}",
                f"{row['requests']:,}",
            ]
        )
    return {"headers": ["key", "cost", "tokens", "requests"], "rows": rows}


def _admin_link(url_name: str, pk: int, text: str) -> str:
    return format_html('<a class="text-primary-600" href="{}">{}</a>', reverse(f"admin:{url_name}", args=[pk]), text)
