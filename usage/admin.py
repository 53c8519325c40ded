"""Usage records in the admin: read-only, filtered, and a per-day chart.

The usage table is the one that grows without bound, so nothing here may scan
all of it: no full COUNT(*) (the paginator counts at most a page cap), no
DISTINCT over a column for a filter's choices (they come from small tables or
from the most recent rows), and no date_hierarchy (its month and day links run
DISTINCT over the whole table).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from accounts.models import ApiKey, Tenant
from usage import reports
from usage.models import UsageRecord

CHART_DEFAULT_DAYS = 30
CHART_MAX_DAYS = 365


class CappedCountPaginator(Paginator):
    """Counts at most `cap` + 1 rows: `SELECT COUNT(*) FROM (... LIMIT cap+1)`.

    Past the cap the changelist says "more than N" and pages stop there; a
    filter narrows the list further. An exact count of millions of rows would
    cost more than the page itself.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


class TenantFilter(admin.SimpleListFilter):
    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Tenant.objects.values_list("pk", "name")]

    def queryset(self, request, queryset):
        return queryset.filter(tenant_id=self.value()) if self.value() else queryset


class KeyFilter(admin.SimpleListFilter):
    """Keys of the chosen tenant (or every key): the key table is small, the usage table is not."""

    title = "API key"
    parameter_name = "key"

    def lookups(self, request, model_admin):
        keys = ApiKey.objects.order_by("tenant__name", "prefix")
        tenant = request.GET.get(TenantFilter.parameter_name)
        if tenant and tenant.isdigit():
            keys = keys.filter(tenant_id=tenant)
        return [(str(pk), f"{prefix}… {name}".strip()) for pk, prefix, name in keys.values_list("pk", "prefix", "name")]

    def queryset(self, request, queryset):
        return queryset.filter(key_id=self.value()) if self.value() else queryset


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status_class"
    CLASSES = {
        "ok": ("success (< 400)", {"status__lt": 400}),
        "4xx": ("client error (4xx)", {"status__gte": 400, "status__lt": 500}),
        "429": ("rate limited (429)", {"status": 429}),
        "499": ("client went away (499)", {"status": 499}),
        "5xx": ("server or upstream error (5xx)", {"status__gte": 500}),
    }

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _) in self.CLASSES.items()]

    def queryset(self, request, queryset):
        if self.value() in self.CLASSES:
            return queryset.filter(**self.CLASSES[self.value()][1])
        return queryset


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices are the values seen in the most recent `sample` rows (an index
    range scan on created_at), not a DISTINCT over the whole table. Any value
    still works in the URL."""

    field = ""
    sample = 5000

    def lookups(self, request, model_admin):
        recent = UsageRecord.objects.order_by("-created_at").values("pk")[: self.sample]
        values = (
            UsageRecord.objects.filter(pk__in=recent)
            .exclude(**{self.field: ""})
            .order_by(self.field)
            .values_list(self.field, flat=True)
            .distinct()
        )
        choices = [(value, value) for value in values]
        if self.value() and (self.value(), self.value()) not in choices:
            choices.append((self.value(), self.value()))
        return choices

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


def recent_values_filter(field: str, title: str) -> type[RecentValuesFilter]:
    attrs = {"field": field, "title": title, "parameter_name": field}
    return type(f"{field.title()}Filter", (RecentValuesFilter,), attrs)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tenant_id",
        "username",
        "endpoint",
        "requested_model",
        "provider",
        "status_display",
        "tokens",
        "cost",
        "latency",
        "cached",
        "stream",
    )
    list_filter = (
        ("created_at", admin.DateFieldListFilter),
        StatusFilter,
        TenantFilter,
        KeyFilter,
        recent_values_filter("provider", "provider"),
        recent_values_filter("endpoint", "endpoint"),
        recent_values_filter("requested_model", "model"),
        "cached",
        "stream",
    )
    # Exact match only: request_id has a unique index, a LIKE over the table has none.
    search_fields = ("=request_id",)
    search_help_text = "Exact request id (the X-Request-ID header)."
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over the filtered table.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100
    ordering = ("-created_at",)
    # Sorting by any other column would sort the whole table; created_at has an index.
    sortable_by = ("created_at",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Records are accounting: `manage.py prune_usage` is the one way they go.
        return False

    @admin.display(description="status")
    def status_display(self, record: UsageRecord) -> str:
        color = "#2e7d32" if record.status < 400 else "#c62828"
        return format_html('<span style="color:{}" title="{}">{}</span>', color, record.error_code, record.status)

    @admin.display(description="tokens in/out (cached)")
    def tokens(self, record: UsageRecord) -> str:
        cached = f" ({record.cached_tokens})" if record.cached_tokens else ""
        return f"{record.input_tokens}/{record.output_tokens}{cached}"

    @admin.display(description="cost USD")
    def cost(self, record: UsageRecord) -> str:
        return f"{record.cost_usd:.6f}"

    @admin.display(description="latency ms")
    def latency(self, record: UsageRecord) -> int:
        return record.latency_ms

    def get_urls(self):
        chart = path("chart/", self.admin_site.admin_view(self.chart_view), name="usage_usagerecord_chart")
        return [chart, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "chart_url": reverse("admin:usage_usagerecord_chart")}
        return super().changelist_view(request, extra_context)

    def chart_view(self, request):
        """Cost and tokens per day over the last `days` days, drawn as CSS bars."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = _chart_days(request.GET.get("days"))
        tenant = request.GET.get("tenant", "")
        tenant_id = int(tenant) if tenant.isdigit() else None
        rows = reports.last_days(days, tenant_id=tenant_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage per day, last {days} days",
            "opts": self.model._meta,
            "days": days,
            "day_choices": (7, 30, 90, 365),
            "tenant_id": tenant_id,
            "tenants": Tenant.objects.values_list("pk", "name"),
            "bars": chart_bars(reports.timeseries(rows, "day"), days),
            "changelist_url": reverse("admin:usage_usagerecord_changelist"),
        }
        return TemplateResponse(request, "admin/usage/usagerecord/chart.html", context)


def _chart_days(raw: str | None) -> int:
    if raw and raw.isdigit():
        return min(max(int(raw), 1), CHART_MAX_DAYS)
    return CHART_DEFAULT_DAYS


def chart_bars(series: list[dict], days: int) -> list[dict]:
    """One entry per calendar day (days without records too), with bar widths in percent."""
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
