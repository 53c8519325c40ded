"""Usage in the admin: the records (read-only, filtered), a per-day chart, and
what each tenant, user and key has spent, on their own admin pages.

The usage table is the one that grows without bound, so nothing here may scan
all of it: no full COUNT(*) (the paginator counts at most a page cap), no
DISTINCT over a column for a filter's choices (they come from small tables or
from the most recent rows), and no date_hierarchy (its month and day links run
DISTINCT over the whole table). Spend on the account lists is one grouped query
per page (`usage.spend.period_use`), each owner bounded by its period.

The account admins are registered again here, with their spend: they live in
`accounts/admin.py`, a layer below usage, which cannot read usage records.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.views import ChangeList

from accounts import admin as accounts_admin
from accounts.models import ApiKey, ApiUser, Tenant
from usage import charts
from usage.models import UsageRecord
from usage.spend import WINDOW_NAMES, PeriodUse, period_use, usd

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
class UsageRecordAdmin(ModelAdmin):
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
    list_fullwidth = True
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

    @display(description="status", label={"ok": "success", "client": "warning", "error": "danger"})
    def status_display(self, record: UsageRecord) -> tuple[str, str]:
        kind = "ok" if record.status < 400 else "client" if record.status < 500 else "error"
        return kind, f"{record.status} {record.error_code}".strip()

    @display(description="tokens in/out (cached)")
    def tokens(self, record: UsageRecord) -> str:
        cached = f" ({record.cached_tokens})" if record.cached_tokens else ""
        return f"{record.input_tokens}/{record.output_tokens}{cached}"

    @display(description="cost USD")
    def cost(self, record: UsageRecord) -> str:
        return f"{record.cost_usd:.6f}"

    @display(description="latency ms")
    def latency(self, record: UsageRecord) -> int:
        return record.latency_ms

    def get_urls(self):
        chart = path("chart/", self.admin_site.admin_view(self.chart_view), name="usage_usagerecord_chart")
        return [chart, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "chart_url": reverse("admin:usage_usagerecord_chart")}
        return super().changelist_view(request, extra_context)

    def chart_view(self, request):
        """Cost and tokens per day over the last `days` days: a chart, and the figures as a table."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = _chart_days(request.GET.get("days"))
        tenant = request.GET.get("tenant", "")
        tenant_id = int(tenant) if tenant.isdigit() else None
        bars = charts.per_day(days, tenant_id=tenant_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Usage per day, last {days} days",
            "opts": self.model._meta,
            "days": days,
            "day_choices": (7, 30, 90, 365),
            "tenant_id": tenant_id,
            "tenants": Tenant.objects.values_list("pk", "name"),
            "bars": bars,
            "chart_data": charts.chart_data(bars),
            "chart_options": charts.chart_options(),
            "changelist_url": reverse("admin:usage_usagerecord_changelist"),
        }
        return TemplateResponse(request, "admin/usage/usagerecord/chart.html", context)


def _chart_days(raw: str | None) -> int:
    if raw and raw.isdigit():
        return min(max(int(raw), 1), CHART_MAX_DAYS)
    return CHART_DEFAULT_DAYS


# --- Spend on the tenant, user and key pages ----------------------------------


class SpendChangeList(ChangeList):
    """Reads the page's spend with one query, once the page's rows are known."""

    def get_results(self, request) -> None:
        super().get_results(request)
        owners = list(self.result_list)  # evaluated here; the template reuses these objects
        uses = period_use(self.model_admin.spend_level, owners, bounded=self.model_admin.spend_bounded)
        for owner in owners:
            owner._period_use = uses.get(owner.pk)


class SpendMixin:
    """Adds "spend" and "quota use" columns to an account admin's list, and both to its change page.

    `spend_bounded`: the list reads at most this month (see `period_use`); a
    change page always reads its owner's whole period."""

    spend_level = ""
    spend_bounded = False

    def get_changelist(self, request, **kwargs):
        return SpendChangeList

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, ("Usage this period", {"fields": ("spend", "quota_use")}))

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "spend", "quota_use")

    def _use(self, owner) -> PeriodUse | None:
        if not hasattr(owner, "_period_use"):  # a change page: this owner alone, over its whole period
            owner._period_use = period_use(self.spend_level, [owner]).get(owner.pk) if owner.pk else None
        return owner._period_use

    @display(description="spend")
    def spend(self, owner) -> str:
        use = self._use(owner)
        if use is None:
            return "—"
        return format_html('{} <span class="text-font-subtle-light">{}</span>', usd(use.cost_usd), use.window)

    @display(description="quota use")
    def quota_use(self, owner) -> str:
        use = self._use(owner)
        if use is None:
            return "—"
        bars = []
        if use.tokens_ratio is not None:
            bars.append(("tokens", f"{use.tokens:,} / {use.token_quota:,}", use.tokens_ratio))
        if use.budget_ratio is not None:
            bars.append(("budget", f"{usd(use.cost_usd)} / {usd(use.budget_usd)}", use.budget_ratio))
        if bars:
            return format_html_join("", "{}", ((_progress(*bar),) for bar in bars))
        limited = owner.token_quota is not None or owner.budget_usd is not None
        if limited and use.window != WINDOW_NAMES[owner.quota_period or "total"]:  # a bounded list
            return "all-time limit: see its page"
        return "no limit"


def _progress(title: str, description: str, ratio: float) -> str:
    """unfold's progress bar: red from 100 %, orange from 80 %."""
    color = "bg-red-600" if ratio >= 1 else "bg-orange-500" if ratio >= 0.8 else ""
    return render_to_string(
        "unfold/components/progress.html",
        {
            "title": title,
            "description": f"{description} ({ratio:.0%})",
            "value": round(min(ratio, 1) * 100, 1),
            "progress_class": color,
            "class": "min-w-32",
        },
    )


class TenantAdmin(SpendMixin, accounts_admin.TenantAdmin):
    spend_level = "tenant"
    spend_bounded = True  # every record has a tenant: all time for all tenants would be the whole table
    list_display = ("name", "status", "spend", "quota_use", "quota_period", "rpm", "tpm", "created_at")


class ApiUserAdmin(SpendMixin, accounts_admin.ApiUserAdmin):
    spend_level = "user"
    spend_bounded = True
    list_display = ("username", "tenant", "status", "spend", "quota_use", "quota_period", "rpm", "created_at")


class ApiKeyAdmin(SpendMixin, accounts_admin.ApiKeyAdmin):
    spend_level = "key"
    list_display = (
        "prefix_display",
        "name",
        "tenant",
        "user",
        "status",
        "spend",
        "quota_use",
        "last_used_at",
        "expires_at",
        "is_admin",
    )


for model, model_admin in ((Tenant, TenantAdmin), (ApiUser, ApiUserAdmin), (ApiKey, ApiKeyAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
