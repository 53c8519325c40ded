"""usage.spend: what tenants, users and keys spent in their quota period, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.usage.records import make_record
from usage import spend, stats
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
# Mid-month, mid-day: "today", "this month" and "earlier" are all distinct.
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def at(when: datetime, key, **fields) -> UsageRecord:
    record = make_record(ago=timedelta(0), key=key, **fields)
    record.created_at = when
    return record


@pytest.fixture
def spending(world):
    """For each key: one record today, one earlier this month, one last month, and a cache hit today."""
    records = []
    for key in (world.member_key, world.owner_key, world.outsider_key):
        records += [
            at(NOW - timedelta(hours=1), key, input_tokens=10, output_tokens=5, cost_usd="1"),
            at(NOW - timedelta(days=5), key, input_tokens=100, output_tokens=50, cost_usd="10"),
            at(NOW - timedelta(days=40), key, input_tokens=1000, output_tokens=500, cost_usd="100"),
            at(NOW - timedelta(hours=2), key, input_tokens=7, cached=True, cost_usd="0"),
        ]
    UsageRecord.objects.bulk_create(records)
    return world


def set_period(key, period: str, **limits) -> None:
    key.quota_period = period
    for name, value in limits.items():
        setattr(key, name, value)
    key.save()


def test_each_key_is_summed_over_its_own_period_in_one_query(spending, django_assert_num_queries):
    world = spending
    set_period(world.member_key, "daily")
    set_period(world.owner_key, "monthly")
    keys = [world.member_key, world.owner_key, world.outsider_key]  # the last one: total
    with django_assert_num_queries(1):
        uses = spend.period_use("key", keys, now=NOW)
    daily, monthly, total = (uses[key.pk] for key in keys)
    assert (daily.window, daily.tokens, daily.cost_usd) == ("today", 15, 1.0)
    assert (monthly.window, monthly.tokens, monthly.cost_usd) == ("this month", 165, 11.0)
    assert (total.window, total.tokens, total.cost_usd) == ("all time", 1665, 111.0)


def test_ratios_are_of_the_owners_own_quota_and_budget(spending):
    world = spending
    set_period(world.member_key, "monthly", token_quota=330, budget_usd="44")
    use = spend.period_use("key", [world.member_key, world.owner_key], now=NOW)
    assert use[world.member_key.pk].tokens_ratio == 0.5 and use[world.member_key.pk].budget_ratio == 0.25
    assert use[world.owner_key.pk].tokens_ratio is None and use[world.owner_key.pk].budget_ratio is None


def test_the_same_rule_as_quota_use(spending):
    world = spending
    for period in ("daily", "monthly", "total"):
        set_period(world.member_key, period, token_quota=1000, budget_usd="500")
        use = spend.period_use("key", [world.member_key], now=NOW)[world.member_key.pk]
        one = stats.quota_use("key", world.member_key, now=NOW)
        assert (use.tokens, use.cost_usd) == (one["tokens_used"], one["cost_used_usd"])
        assert (use.tokens_ratio, use.budget_ratio) == (one["tokens_used_ratio"], one["budget_used_ratio"])


def test_bounded_reads_a_total_period_owner_over_this_month_only(spending):
    world = spending
    world.acme.token_quota = 10
    world.acme.save()
    use = spend.period_use("tenant", [world.acme, world.globex], now=NOW, bounded=True)
    acme = use[world.acme.pk]
    assert (acme.window, acme.tokens, acme.cost_usd) == ("this month", 330, 22.0)  # two keys, this month
    assert acme.tokens_ratio is None  # its quota is all-time: not known from this month


def test_no_owners_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert spend.period_use("key", []) == {}


def test_top_ranks_owners_by_cost_since_a_time(spending):
    world = spending
    UsageRecord.objects.bulk_create([at(NOW - timedelta(hours=3), world.outsider_key, cost_usd="15", output_tokens=3)])
    top = spend.top("tenant", NOW - timedelta(days=10), limit=5)
    assert [row["owner_id"] for row in top] == [world.globex.pk, world.acme.pk]
    # globex: today, 5 days ago, the cache hit and the new one (acme: 2 keys × $11)
    assert top[0] == {"owner_id": world.globex.pk, "cost_usd": 26.0, "tokens": 15 + 150 + 7 + 3, "requests": 4}
    assert spend.top("key", NOW - timedelta(days=10), limit=1)[0]["owner_id"] == world.outsider_key.pk


@pytest.mark.parametrize(
    "amount,shown",
    [(0, "$0.00"), (1234.5, "$1,234.50"), (1, "$1.00"), (0.0525, "$0.0525"), (0.000014, "$0.000014")],
)
def test_usd(amount, shown):
    assert spend.usd(amount) == shown
