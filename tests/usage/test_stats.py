"""usage.stats: recent traffic in figures, from the usage table."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.usage.records import make_record
from usage import stats
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
MIN = timedelta(minutes=1)


def save(*records) -> None:
    UsageRecord.objects.bulk_create(records)


def test_figures_per_provider_and_overall_for_the_window():
    save(
        make_record(ago=MIN, provider="a", latency_ms=100, input_tokens=10, output_tokens=5),
        make_record(ago=MIN, provider="a", latency_ms=300, status=502),
        make_record(ago=MIN, provider="a", latency_ms=200, status=400),  # the client's: neither
        make_record(ago=MIN, provider="b", latency_ms=50),
        make_record(ago=MIN, provider="", latency_ms=1, status=429),  # refused before routing
        make_record(ago=20 * MIN, provider="a", latency_ms=9999, status=500),  # outside the window
    )
    recent = stats.recent(minutes=15)
    a = recent.providers["a"].as_dict()
    assert (a["total_requests"], a["successful_requests"], a["failed_requests"]) == (3, 1, 1)
    assert a["error_rate"] == 0.5 and a["success_rate"] == 0.5
    assert a["avg_response_time"] == 200.0 and a["p50_latency_ms"] == 200.0 and a["p95_latency_ms"] == 290.0
    assert a["total_tokens"] == 15
    assert set(recent.providers) == {"a", "b"}
    summary = recent.summary.as_dict()
    assert summary["total_requests"] == 5 and summary["failed_requests"] == 1
    assert summary["requests_per_minute"] == round(5 / 15, 2)


def test_no_traffic_is_all_zero_and_never_divides_by_zero():
    summary = stats.recent().summary.as_dict()
    assert summary["total_requests"] == 0 and summary["error_rate"] == 0.0 and summary["p95_latency_ms"] == 0.0


def test_percentile_interpolates_between_ranks():
    assert stats.percentile([10, 20, 30, 40], 0.5) == 25.0
    assert stats.percentile([7], 0.95) == 7


def test_quota_use_is_a_ratio_of_this_periods_use(world):
    world.acme.budget_usd = Decimal("2")
    world.acme.token_quota = 100
    world.acme.save()
    save(
        make_record(ago=MIN, key=world.member_key, input_tokens=20, output_tokens=5, cost_usd="0.5"),
        make_record(ago=MIN, key=world.member_key, cached=True, input_tokens=50, cost_usd="0"),  # a cache hit
    )
    use = stats.quota_use("tenant", world.acme)
    assert use["budget_used_ratio"] == 0.25 and use["tokens_used_ratio"] == 0.25
    assert stats.quota_use("key", world.member_key)["budget_used_ratio"] is None


def test_tenant_filter_keeps_only_that_tenants_traffic(world):
    save(
        make_record(ago=MIN, key=world.member_key, provider="a", latency_ms=100, status=502),
        make_record(ago=MIN, key=world.outsider_key, provider="a", latency_ms=900),
        make_record(ago=MIN, key=world.outsider_key, provider="b", latency_ms=50),
    )
    mine = stats.recent(tenant_id=world.acme.pk)
    assert set(mine.providers) == {"a"}
    assert mine.providers["a"].failed_requests == 1 and mine.providers["a"].p95_latency_ms == 100
    assert mine.summary.total_requests == 1
    assert stats.recent().summary.total_requests == 3


def test_without_percentiles_the_counts_are_the_same_and_latencies_are_not_read(django_assert_num_queries):
    save(
        make_record(ago=MIN, provider="a", latency_ms=100),
        make_record(ago=MIN, provider="a", latency_ms=300, status=503),
    )
    with django_assert_num_queries(1):
        counts = stats.recent(percentiles=False)
    a = counts.providers["a"]
    assert (a.total_requests, a.failed_requests, a.avg_response_time_ms) == (2, 1, 200.0)
    assert a.p95_latency_ms == 0.0 and counts.summary.total_requests == 2
