"""Metric paths: what an alert rule watches, and what it is worth now.

    providers.<provider>.<figure>   recent traffic of one provider
    summary.<figure>                recent traffic of the whole gateway
    tenants.<tenant>.<ratio>        how much of its budget or token quota a tenant has used this period
    keys.<key prefix>.<ratio>       the same for an API key, named by its 12-character display prefix

A <figure> is one of FIGURES (over usage.stats' recent window), a <ratio> one
of RATIOS. The provider, tenant or key must exist when the rule is saved.
Provider and tenant names may hold dots, so a path is cut at its first and
its last dot.

`check_path()` is the one validation of a path, used by the model's clean()
and so by the API and the admin alike. `Metrics` gives the values for one
evaluation: the recent-traffic window is read once however many rules ask,
and each tenant's or key's quota use once.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from django.core.exceptions import ValidationError

from accounts.models import ApiKey, Tenant
from providers.models import Provider
from usage import stats

# Figures of recent traffic, per provider and for the summary (usage.stats.Figures).
FIGURES = {
    "requests": attrgetter("total_requests"),
    "successful_requests": attrgetter("successful_requests"),
    "failed_requests": attrgetter("failed_requests"),
    "error_rate": attrgetter("error_rate"),
    "success_rate": attrgetter("success_rate"),
    "avg_response_time": attrgetter("avg_response_time_ms"),
    "p50_latency_ms": attrgetter("p50_latency_ms"),
    "p95_latency_ms": attrgetter("p95_latency_ms"),
    "requests_per_minute": attrgetter("requests_per_minute"),
    "total_tokens": attrgetter("total_tokens"),
}
# Share of a limit used this period (usage.stats.quota_use): 1.0 is the whole budget or quota.
RATIOS = ("budget_used_ratio", "tokens_used_ratio")
LEVELS = {"tenants": "tenant", "keys": "key"}
SHAPES = "providers.<name>.<figure>, summary.<figure>, tenants.<name>.<ratio> or keys.<key prefix>.<ratio>"


@dataclass(frozen=True)
class MetricPath:
    kind: str  # providers | summary | tenants | keys
    name: str  # provider, tenant or key prefix; "" for summary
    metric: str


def parse(path: str) -> MetricPath | None:
    """The parts of a well-formed path, or None."""
    kind, _, rest = path.partition(".")
    if kind == "summary":
        return MetricPath(kind, "", rest) if rest in FIGURES else None
    name, _, metric = rest.rpartition(".")
    if kind == "providers" and name and metric in FIGURES:
        return MetricPath(kind, name, metric)
    if kind in LEVELS and name and metric in RATIOS:
        return MetricPath(kind, name, metric)
    return None


def _shape_error(path: str) -> str:
    kind, _, rest = path.partition(".")
    name, _, metric = rest.rpartition(".")
    if kind == "summary":
        return f"Unknown summary figure {rest!r}: use one of {', '.join(FIGURES)}."
    if kind == "providers" and name:
        return f"Unknown provider figure {metric!r}: use one of {', '.join(FIGURES)}."
    if kind in LEVELS and name:
        return f"Unknown {kind} ratio {metric!r}: use {' or '.join(RATIOS)}."
    return f"Unknown metric path {path!r}: use {SHAPES}."


def check_path(path: str, tenant: Tenant | None = None) -> MetricPath:
    """The parsed path, or a ValidationError saying what is wrong with it.

    `tenant`: the rule belongs to that tenant, and may watch only its metrics
    (`tenants.<its name>.*`, `keys.<prefix of one of its keys>.*`). Checked
    before existence, so the message never tells one tenant whether another
    tenant's name or key exists.
    """
    parsed = parse(path)
    if parsed is None:
        raise ValidationError(_shape_error(path))
    if tenant is not None:
        if parsed.kind in ("providers", "summary"):
            raise ValidationError(
                f"A rule of tenant {tenant.name!r} may watch only tenants.{tenant.name}.<ratio> "
                "or keys.<prefix of one of its keys>.<ratio>."
            )
        if parsed.kind == "tenants" and parsed.name != tenant.name:
            raise ValidationError(f"A rule of tenant {tenant.name!r} may watch only its own tenant's metrics.")
    if parsed.kind == "providers" and not Provider.objects.filter(name=parsed.name).exists():
        # A typo would otherwise watch a provider with no traffic, and never fire.
        raise ValidationError(f"No provider named {parsed.name!r}.")
    if parsed.kind == "tenants" and not Tenant.objects.filter(name=parsed.name).exists():
        raise ValidationError(f"No tenant named {parsed.name!r}.")
    if parsed.kind == "keys":
        keys = ApiKey.objects.filter(prefix=parsed.name)
        if tenant is not None:
            keys = keys.filter(tenant=tenant)
        found = keys.count()
        if found == 0:
            owner = f" in tenant {tenant.name!r}" if tenant is not None else ""
            raise ValidationError(f"No API key with prefix {parsed.name!r}{owner}.")
        if found > 1:
            raise ValidationError(f"Several API keys have the prefix {parsed.name!r}; watch their tenant instead.")
    return parsed


class Metrics:
    """Values of metric paths at one moment: one evaluation's worth of reads."""

    def __init__(self, minutes: float = stats.RECENT_MINUTES) -> None:
        self.minutes = minutes
        self._recent: stats.Recent | None = None
        self._quota: dict[tuple[str, str], dict | None] = {}

    @property
    def recent(self) -> stats.Recent:
        if self._recent is None:
            self._recent = stats.recent(self.minutes)
        return self._recent

    def value(self, path: str) -> float | None:
        """The metric's value; None when there is none to compare (an unknown
        path, a tenant or key that is gone, or a limit that is not set)."""
        parsed = parse(path)
        if parsed is None:
            return None
        if parsed.kind == "summary":
            return float(FIGURES[parsed.metric](self.recent.summary))
        if parsed.kind == "providers":
            # A provider with no traffic in the window has the figures of no traffic: 0 requests, 0 errors.
            figures = self.recent.providers.get(parsed.name) or stats.Figures(minutes=self.minutes)
            return float(FIGURES[parsed.metric](figures))
        use = self._quota_use(parsed.kind, parsed.name)
        ratio = use.get(parsed.metric) if use else None
        return float(ratio) if ratio is not None else None

    def _quota_use(self, kind: str, name: str) -> dict | None:
        if (kind, name) not in self._quota:
            if kind == "tenants":
                owner = Tenant.objects.filter(name=name).first()
            else:
                owners = list(ApiKey.objects.filter(prefix=name)[:2])
                owner = owners[0] if len(owners) == 1 else None
            self._quota[kind, name] = stats.quota_use(LEVELS[kind], owner) if owner is not None else None
        return self._quota[kind, name]
