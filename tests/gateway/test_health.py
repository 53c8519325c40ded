"""GET /health (the gateway's health and its score), GET /api/v1/health (liveness,
unchanged) and GET /api/v1/health/providers (each provider, admins only).
The rules and the score's formula are gateway/health.py's docstring."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.utils import timezone

from alerts.models import Alert, AlertStatus
from gateway import health
from providers.circuit import CircuitConfig, circuits
from tests.usage.records import make_record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

CIRCUIT = CircuitConfig(failure_threshold=2, recovery_timeout=30.0)
FIELDS = {"status", "health_score", "timestamp", "response_time", "providers", "system", "alerts"}
PROVIDER_FIELDS = {
    "name", "type", "enabled", "circuit", "models", "requests", "error_rate", "p50_latency_ms", "p95_latency_ms",
    "status",
}  # fmt: skip


@pytest.fixture
def echo(factory):
    return factory.make_provider("echo", type="echo", models=["echo"])


def open_circuit(name: str) -> None:
    for _ in range(CIRCUIT.failure_threshold):
        async_to_sync(circuits.record_failure)(name, CIRCUIT)


def traffic(provider: str, ok: int, failed: int, **fields) -> None:
    """`ok` answered calls and `failed` 5xx ones of `provider`, a minute ago."""
    statuses = [200] * ok + [502] * failed
    UsageRecord.objects.bulk_create(
        make_record(ago=timedelta(minutes=1), provider=provider, status=code, latency_ms=100, **fields)
        for code in statuses
    )


def raise_alert(severity: str, status: str = AlertStatus.ACTIVE) -> Alert:
    return Alert.objects.create(
        rule_name="r", severity=severity, status=status, metric_path="summary.error_rate", condition=">",
        threshold=0.1, value=0.5, message="error rate over 10 %",
    )  # fmt: skip


def get_health(api) -> tuple[dict, int]:
    response = api.get("/health")
    return response.json(), response.status_code


# --- GET /health: the body ------------------------------------------------------------


def test_health_has_every_field_typed_and_needs_no_key(api, echo):
    body, code = get_health(api)
    assert code == 200
    assert set(body) == FIELDS
    assert body["status"] == "healthy" and body["health_score"] == 100.0
    assert datetime.fromisoformat(body["timestamp"]) <= timezone.now()
    assert isinstance(body["response_time"], float) and 0 <= body["response_time"] < 5
    assert body["providers"] == {"total": 1, "healthy": 1, "degraded": 0, "unhealthy": 0, "disabled": 0}
    assert set(body["system"]) == {"cpu_percent", "memory_percent", "memory_used_mb", "disk_percent"}
    for name in ("cpu_percent", "memory_percent", "disk_percent"):
        assert isinstance(body["system"][name], float) and 0 <= body["system"][name] <= 100
    assert isinstance(body["system"]["memory_used_mb"], float) and body["system"]["memory_used_mb"] > 0
    assert body["alerts"] == {"active": 0, "critical": 0, "warning": 0}


def test_cpu_reading_does_not_block(api, echo, monkeypatch):
    calls = []
    monkeypatch.setattr(health.psutil, "cpu_percent", lambda interval=None: calls.append(interval) or 12.5)
    body, _ = get_health(api)
    assert calls == [None] and body["system"]["cpu_percent"] == 12.5


def test_health_is_not_throttled(api, echo, settings):
    settings.MANAGEMENT_RATE_LIMIT = "2/m"
    assert [api.get("/health").status_code for _ in range(5)] == [200] * 5


def test_health_report_is_the_views_body_and_status(echo):
    body, code = health.health_report()
    assert code == 200 and set(body) == FIELDS and body["status"] == "healthy"


# --- providers and circuit breakers ---------------------------------------------------


def test_every_circuit_open_is_unhealthy_with_503(api, echo, factory):
    factory.make_provider("primary")
    open_circuit("echo")
    open_circuit("primary")
    body, code = get_health(api)
    assert code == 503 and body["status"] == "unhealthy"
    assert body["providers"] == {"total": 2, "healthy": 0, "degraded": 0, "unhealthy": 2, "disabled": 0}
    assert body["health_score"] == 40.0  # providers 0, circuits 0, errors 20, alerts 20


def test_one_open_circuit_of_two_is_degraded(api, echo, factory):
    factory.make_provider("primary")
    open_circuit("primary")
    body, code = get_health(api)
    assert code == 200 and body["status"] == "degraded"
    assert body["health_score"] == 70.0  # providers 40 × 1/2, circuits 20 × 1/2, errors 20, alerts 20
    assert (body["providers"]["healthy"], body["providers"]["unhealthy"]) == (1, 1)


def test_half_open_circuit_is_degraded(api, echo, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    open_circuit("echo")
    time_machine.shift(CIRCUIT.recovery_timeout + 1)
    body, code = get_health(api)
    assert code == 200 and body["status"] == "degraded"
    assert body["providers"]["degraded"] == 1
    assert body["health_score"] == 70.0  # providers 40 × ½, circuits 20 × ½


def test_no_enabled_provider_is_unhealthy(api, factory):
    factory.make_provider("primary", is_enabled=False)
    body, code = get_health(api)
    assert code == 503 and body["status"] == "unhealthy"
    assert body["providers"] == {"total": 1, "healthy": 0, "degraded": 0, "unhealthy": 0, "disabled": 1}


def test_a_disabled_provider_does_not_lower_the_score(api, echo, factory):
    factory.make_provider("old", is_enabled=False)
    body, _ = get_health(api)
    assert body["status"] == "healthy" and body["health_score"] == 100.0 and body["providers"]["disabled"] == 1


# --- recent error rates ----------------------------------------------------------------


def test_error_rate_of_ten_percent_degrades_a_provider(api, echo):
    traffic("echo", ok=8, failed=2)
    body, code = get_health(api)
    assert code == 200 and body["status"] == "degraded" and body["providers"]["degraded"] == 1
    assert body["health_score"] == 72.0  # providers 40 × ½, circuits 20, errors 20 × (1 − 0.2/0.5), alerts 20


def test_error_rate_of_half_makes_the_only_provider_and_the_gateway_unhealthy(api, echo):
    traffic("echo", ok=5, failed=5)
    body, code = get_health(api)
    assert code == 503 and body["status"] == "unhealthy" and body["providers"]["unhealthy"] == 1
    assert body["health_score"] == 40.0


def test_too_few_calls_say_nothing_about_the_error_rate(api, echo):
    traffic("echo", ok=0, failed=health.MIN_REQUESTS - 1)
    body, _ = get_health(api)
    assert body["status"] == "healthy" and body["health_score"] == 100.0


def test_old_errors_are_outside_the_window(api, echo):
    UsageRecord.objects.bulk_create(
        make_record(ago=timedelta(minutes=health.WINDOW_MINUTES + 1), provider="echo", status=502) for _ in range(20)
    )
    body, _ = get_health(api)
    assert body["status"] == "healthy"


# --- alerts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "severities, score, status",
    [
        (["info"], 100.0, "healthy"),
        (["warning"], 95.0, "healthy"),
        (["error"], 90.0, "degraded"),
        (["critical"], 80.0, "degraded"),
        (["critical", "error", "warning"], 80.0, "degraded"),  # the alerts part is at most 20
    ],
)
def test_active_alerts_lower_the_score_by_severity(api, echo, severities, score, status):
    for severity in severities:
        raise_alert(severity)
    body, code = get_health(api)
    assert (body["health_score"], body["status"], code) == (score, status, 200)


def test_alert_counts_are_of_active_alerts_only(api, echo):
    raise_alert("critical")
    raise_alert("warning")
    raise_alert("info")
    raise_alert("critical", AlertStatus.ACKNOWLEDGED)
    raise_alert("critical", AlertStatus.RESOLVED)
    body, _ = get_health(api)
    assert body["alerts"] == {"active": 3, "critical": 1, "warning": 1}


# --- when the database fails ------------------------------------------------------------


def test_database_failure_is_unhealthy_with_every_field(api, echo, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.stats, "recent", broken)
    body, code = get_health(api)
    assert code == 503 and set(body) == FIELDS
    assert body["status"] == "unhealthy" and body["health_score"] == 0.0
    assert body["providers"]["total"] == 0 and body["alerts"] == {"active": 0, "critical": 0, "warning": 0}


# --- GET /api/v1/health keeps its shape -----------------------------------------------------


def test_api_health_is_unchanged(api):
    response = api.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "llm-gateway", "database": "healthy"}


# --- GET /api/v1/health/providers -----------------------------------------------------------


def test_providers_health_lists_each_provider_with_its_figures(admin_api, echo, factory):
    factory.make_provider("primary")
    factory.make_provider("old", is_enabled=False)
    open_circuit("primary")
    traffic("echo", ok=9, failed=1)
    response = admin_api.get("/api/v1/health/providers")
    assert response.status_code == 200
    body = response.json()
    assert body["window_minutes"] == health.WINDOW_MINUTES
    by_name = {entry["name"]: entry for entry in body["providers"]}
    assert all(set(entry) == PROVIDER_FIELDS for entry in body["providers"])
    assert by_name["echo"] == {
        "name": "echo", "type": "echo", "enabled": True, "circuit": "closed", "models": 1, "requests": 10,
        "error_rate": 0.1, "p50_latency_ms": 100.0, "p95_latency_ms": 100.0, "status": "degraded",
    }  # fmt: skip
    assert (by_name["primary"]["circuit"], by_name["primary"]["status"]) == ("open", "unhealthy")
    assert (by_name["old"]["enabled"], by_name["old"]["status"]) == (False, "disabled")


def test_providers_health_needs_an_admin_key(api, as_key, world, echo):
    assert api.get("/api/v1/health/providers").status_code == 401
    refused = as_key(world.member_raw).get("/api/v1/health/providers")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_permissions"


def test_tenant_admin_sees_its_own_tenants_traffic_only(as_key, world, echo):
    traffic("echo", ok=2, failed=0, tenant_id=world.acme.pk)
    traffic("echo", ok=0, failed=20, tenant_id=world.globex.pk)
    (entry,) = as_key(world.owner_raw).get("/api/v1/health/providers").json()["providers"]
    assert (entry["requests"], entry["error_rate"], entry["status"]) == (2, 0.0, "healthy")
