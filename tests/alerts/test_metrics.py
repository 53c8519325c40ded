"""alerts.metrics: metric paths, checked and valued."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from alerts import metrics
from alerts.metrics import Metrics, check_path
from tests.usage.records import make_record
from usage import stats
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


@pytest.fixture
def traffic(world):
    UsageRecord.objects.bulk_create(
        [
            make_record(ago=MIN, key=world.member_key, provider="openai.eu", latency_ms=100, status=200),
            make_record(ago=MIN, key=world.member_key, provider="openai.eu", latency_ms=300, status=502),
            make_record(ago=MIN, key=world.member_key, provider="openai.eu", latency_ms=200, status=500),
            make_record(ago=MIN, key=world.outsider_key, provider="anthropic", latency_ms=50, status=200),
            make_record(ago=30 * MIN, key=world.outsider_key, provider="anthropic", latency_ms=9, status=500),
        ]
    )


def test_provider_figures_from_recent_traffic(traffic):
    values = Metrics()
    # A provider name with a dot: the path is cut at its first and last dot.
    assert values.value("providers.openai.eu.error_rate") == pytest.approx(2 / 3)
    assert values.value("providers.openai.eu.requests") == 3
    assert values.value("providers.openai.eu.avg_response_time") == 200
    assert values.value("providers.openai.eu.p50_latency_ms") == 200
    assert values.value("providers.openai.eu.p95_latency_ms") == pytest.approx(290)
    assert values.value("providers.anthropic.error_rate") == 0  # its failure is outside the window


def test_summary_figures_from_recent_traffic(traffic):
    values = Metrics()
    assert values.value("summary.requests") == 4
    assert values.value("summary.error_rate") == 0.5
    assert values.value("summary.requests_per_minute") == pytest.approx(4 / stats.RECENT_MINUTES)
    assert values.value("summary.p95_latency_ms") == pytest.approx(285)


def test_a_provider_without_traffic_has_the_figures_of_no_traffic(db):
    values = Metrics()
    assert values.value("providers.idle.requests") == 0
    assert values.value("providers.idle.error_rate") == 0


def test_recent_traffic_is_read_once_per_evaluation(traffic, monkeypatch):
    reads = []
    real = stats.recent
    monkeypatch.setattr(metrics.stats, "recent", lambda minutes: reads.append(minutes) or real(minutes))
    values = Metrics()
    for path in ("summary.error_rate", "providers.openai.eu.error_rate", "providers.anthropic.requests"):
        values.value(path)
    assert reads == [stats.RECENT_MINUTES]


def test_tenant_and_key_ratios_of_their_limits(world):
    world.acme.budget_usd, world.acme.token_quota = 10, 1000
    world.acme.save()
    world.member_key.token_quota = 400
    world.member_key.save()
    UsageRecord.objects.bulk_create(
        [make_record(ago=MIN, key=world.member_key, input_tokens=150, output_tokens=50, cost_usd="2.5")]
    )
    values = Metrics()
    assert values.value("tenants.acme.budget_used_ratio") == 0.25
    assert values.value("tenants.acme.tokens_used_ratio") == 0.2
    assert values.value(f"keys.{world.member_key.prefix}.tokens_used_ratio") == 0.5
    # No budget on the key, no tenant of that name: no value, so no alert.
    assert values.value(f"keys.{world.member_key.prefix}.budget_used_ratio") is None
    assert values.value("tenants.nowhere.budget_used_ratio") is None


@pytest.mark.parametrize(
    "path, message",
    [
        ("latency", "Unknown metric path 'latency'"),
        ("providers.error_rate", "Unknown metric path"),
        ("providers.primary.latency", "Unknown provider figure 'latency'"),
        ("summary.bogus", "Unknown summary figure 'bogus'"),
        ("tenants.acme.spend", "Unknown tenants ratio 'spend'"),
        ("providers.nowhere.error_rate", "No provider named 'nowhere'"),
        ("tenants.nowhere.budget_used_ratio", "No tenant named 'nowhere'"),
        ("keys.llm_00000000.budget_used_ratio", "No API key with prefix 'llm_00000000'"),
    ],
)
def test_bad_paths_are_refused_with_a_clear_message(world, factory, path, message):
    factory.make_provider("primary")
    with pytest.raises(ValidationError) as caught:
        check_path(path)
    assert message in caught.value.messages[0]


def test_good_paths_pass(world, factory):
    factory.make_provider("primary")
    for path in (
        "providers.primary.error_rate",
        "summary.p95_latency_ms",
        "tenants.acme.budget_used_ratio",
        f"keys.{world.member_key.prefix}.tokens_used_ratio",
    ):
        assert check_path(path).metric == path.rpartition(".")[2]


def test_a_tenant_rule_watches_only_its_own_tenant(world, factory):
    factory.make_provider("primary")
    check_path("tenants.acme.budget_used_ratio", tenant=world.acme)
    check_path(f"keys.{world.owner_key.prefix}.budget_used_ratio", tenant=world.acme)
    for path in (
        "tenants.globex.budget_used_ratio",
        "tenants.nowhere.budget_used_ratio",  # same answer as for a tenant that exists
        f"keys.{world.outsider_key.prefix}.budget_used_ratio",
        "providers.primary.error_rate",
        "summary.error_rate",
    ):
        with pytest.raises(ValidationError) as caught:
            check_path(path, tenant=world.acme)
        assert "globex" not in caught.value.messages[0]
