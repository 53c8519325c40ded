"""How the gateway is doing: `health_report()` for `GET /health` (and the admin
dashboard), `providers_report()` for `GET /api/v1/health/providers`,
`metrics_report()` for `GET /metrics`. Traffic figures come from the usage
table (usage.stats), so every worker process answers the same.

A provider's status joins its own state (providers.health) with its traffic of
the last WINDOW_MINUTES:

- disabled: not enabled; it counts in none of the shares below;
- unhealthy: circuit open, or an error rate of UNHEALTHY_ERROR_RATE (50 %) or more;
- degraded: circuit half-open, or an error rate of DEGRADED_ERROR_RATE (10 %) or more;
- healthy otherwise.

An error rate counts only over MIN_REQUESTS answered calls (successes plus
5xx failures; 4xx are the client's): two calls, one failed, say nothing yet.

The health score, 0-100, adds four parts; E is the number of enabled providers:

    providers  40 × (healthy + ½ × degraded) / E
    circuits   20 × (closed + ½ × half-open) / E
    errors     20 × (1 − min(1, error rate / 50 %))    all recent traffic; 20 under MIN_REQUESTS calls
    alerts     20 − min(20, 20 × critical + 10 × error + 5 × warning)    active alerts; info weighs 0

With no enabled provider the first two parts are 0. The status is `unhealthy`
(HTTP 503) when no enabled provider can serve — none is enabled, or every
enabled one's circuit is open (the built-in `echo` provider is a provider like
any other, so a fresh install is healthy) — or when the score is under 50;
`healthy` from 95 up; `degraded` between. So one warning alert leaves the
gateway healthy (95); an error alert (90), a critical one (80), or the only
provider half-open (70) makes it degraded; the only provider failing half its
calls (40) makes it unhealthy. When the database or Redis cannot be read the
report says unhealthy with a score of 0.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psutil
import redis
from django.conf import settings
from django.db import Error as DbError  # any database failure, InterfaceError included
from django.db.models import Count, Q
from django.utils import timezone

from alerts.models import Alert, AlertStatus, Severity
from providers.health import ProviderState, provider_states
from providers.models import Provider
from usage import stats
from usage.stats import Figures, Recent

logger = logging.getLogger("gateway.health")

WINDOW_MINUTES = 5
MIN_REQUESTS = 10
DEGRADED_ERROR_RATE = 0.10
UNHEALTHY_ERROR_RATE = 0.50
HEALTHY_SCORE = 95
UNHEALTHY_SCORE = 50
ALERT_PENALTY = {Severity.CRITICAL: 20, Severity.ERROR: 10, Severity.WARNING: 5, Severity.INFO: 0}
GATEWAY_STATUSES = ("healthy", "degraded", "unhealthy")
PROVIDER_STATUSES = (*GATEWAY_STATUSES, "disabled")


def rate_counts(figures: Figures) -> bool:
    return figures.successful_requests + figures.failed_requests >= MIN_REQUESTS


@dataclass
class ProviderHealth:
    state: ProviderState
    figures: Figures

    @property
    def status(self) -> str:
        own = self.state.status
        if own in ("disabled", "unhealthy") or not rate_counts(self.figures):
            return own
        if self.figures.error_rate >= UNHEALTHY_ERROR_RATE:
            return "unhealthy"
        if self.figures.error_rate >= DEGRADED_ERROR_RATE:
            return "degraded"
        return own

    def as_dict(self) -> dict:
        return {
            "name": self.state.name,
            "type": self.state.type,
            "enabled": self.state.enabled,
            "circuit": self.state.circuit,
            "models": self.state.models,
            "requests": self.figures.total_requests,
            "error_rate": round(self.figures.error_rate, 4),
            "p50_latency_ms": round(self.figures.p50_latency_ms, 1),
            "p95_latency_ms": round(self.figures.p95_latency_ms, 1),
            "status": self.status,
        }


def provider_health(recent: Recent) -> list[ProviderHealth]:
    """Every provider (disabled ones too), with its figures from `recent`."""
    idle = Figures(minutes=recent.minutes)
    return [ProviderHealth(state, recent.providers.get(state.name, idle)) for state in provider_states()]


def active_alerts() -> dict[str, int]:
    """Active alerts (acknowledged ones have an operator on them) by severity."""
    by_severity = {severity: Count("id", filter=Q(severity=severity)) for severity in Severity.values}
    return Alert.objects.filter(status=AlertStatus.ACTIVE).aggregate(active=Count("id"), **by_severity)


def health_score(providers: list[ProviderHealth], summary: Figures, alerts: dict[str, int]) -> float:
    """The module docstring's formula."""
    enabled = [p for p in providers if p.state.enabled]
    score = 0.0
    if enabled:
        statuses = [p.status for p in enabled]
        score += 40 * (statuses.count("healthy") + 0.5 * statuses.count("degraded")) / len(enabled)
        circuits = [p.state.circuit for p in enabled]
        score += 20 * (circuits.count("closed") + 0.5 * circuits.count("half_open")) / len(enabled)
    error_rate = summary.error_rate if rate_counts(summary) else 0.0
    score += 20 * (1 - min(1.0, error_rate / UNHEALTHY_ERROR_RATE))
    score += 20 - min(20, sum(ALERT_PENALTY[severity] * alerts[severity] for severity in Severity.values))
    return round(score, 1)


def overall_status(providers: list[ProviderHealth], score: float) -> str:
    can_serve = any(p.state.enabled and p.state.circuit != "open" for p in providers)
    if not can_serve or score < UNHEALTHY_SCORE:
        return "unhealthy"
    return "healthy" if score >= HEALTHY_SCORE else "degraded"


def system_figures() -> dict:
    """This machine's load. `cpu_percent` without an interval does not block: it
    compares with the previous call (or psutil's import), so it is the average
    since then."""
    memory = psutil.virtual_memory()
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory_percent": memory.percent,
        "memory_used_mb": round(memory.used / 2**20, 1),
        "disk_percent": psutil.disk_usage(str(settings.BASE_DIR)).percent,
    }


def health_report() -> tuple[dict, int]:
    """The body of `GET /health` and its HTTP status (503 when unhealthy)."""
    started = time.perf_counter()
    try:
        recent = stats.recent(WINDOW_MINUTES, percentiles=False)
        providers = provider_health(recent)
        alerts = active_alerts()
    except (DbError, redis.RedisError):
        logger.exception("Health check could not read the database or Redis")
        providers, score, status = [], 0.0, "unhealthy"
        alerts = {"active": 0, Severity.CRITICAL: 0, Severity.WARNING: 0}
    else:
        score = health_score(providers, recent.summary, alerts)
        status = overall_status(providers, score)
    statuses = [p.status for p in providers]
    body = {
        "status": status,
        "health_score": score,
        "timestamp": timezone.now().isoformat(),
        "response_time": 0.0,
        "providers": {"total": len(providers), **{name: statuses.count(name) for name in PROVIDER_STATUSES}},
        "system": system_figures(),
        "alerts": {
            "active": alerts["active"],
            "critical": alerts[Severity.CRITICAL],
            "warning": alerts[Severity.WARNING],
        },
    }
    body["response_time"] = round(time.perf_counter() - started, 4)
    return body, 503 if status == "unhealthy" else 200


def providers_report(tenant_id: int | None = None) -> dict:
    """Each provider's state and recent figures, of one tenant's traffic when given."""
    recent = stats.recent(WINDOW_MINUTES, tenant_id=tenant_id)
    return {"window_minutes": WINDOW_MINUTES, "providers": [p.as_dict() for p in provider_health(recent)]}


def metrics_report(minutes: int, tenant_id: int | None = None) -> dict:
    """`GET /metrics`: figures per provider (every configured one, idle ones at
    zero) and for all traffic over the last `minutes`."""
    recent = stats.recent(minutes, tenant_id=tenant_id)
    names = set(recent.providers) | set(Provider.objects.values_list("name", flat=True))
    idle = Figures(minutes=minutes)
    return {
        "window_minutes": minutes,
        "since": recent.since.isoformat(),
        "providers": {name: recent.providers.get(name, idle).as_dict() for name in sorted(names)},
        "summary": recent.summary.as_dict(),
    }
