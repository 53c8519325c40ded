from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.usage.records import make_record
from usage.admin import CappedCountPaginator
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/usage/usagerecord/"
CHART = "/admin/usage/usagerecord/chart/"


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only"))
    return client


def page(response) -> str:
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def results(response) -> str:
    """The changelist's result table alone (filter choices list values too)."""
    html = page(response)
    return html.split('id="result_list"', 1)[1].split("</table>", 1)[0]


def unbounded_counts(queries) -> list[str]:
    """COUNT(*) queries over the usage table with neither a WHERE nor a LIMIT: a full count."""
    return [
        q["sql"]
        for q in queries
        if re.search(r"COUNT\(", q["sql"], re.I)
        and '"usage_usagerecord"' in q["sql"]
        and not re.search(r"\b(WHERE|LIMIT)\b", q["sql"])
    ]


def test_changelist_lists_records_and_links_the_chart(usage_rows, staff_client):
    html = page(staff_client.get(CHANGELIST))
    assert "gpt-4o-mini" in html and "anthropic" in html
    assert "200/100 (50)" in html  # tokens in/out (cached)
    assert 'href="/admin/usage/usagerecord/chart/"' in html
    assert "7 usage records" in html
    assert "_facets" not in html  # facet counts would COUNT the table once per choice


def test_changelist_never_counts_the_whole_table(usage_rows, staff_client):
    with CaptureQueriesContext(connection) as queries:
        page(staff_client.get(CHANGELIST))
        page(staff_client.get(CHANGELIST, {"status_class": "5xx"}))
    assert unbounded_counts(queries) == []
    assert any("COUNT(" in q["sql"] and "LIMIT" in q["sql"] for q in queries)  # the capped page count


def test_changelist_queries_are_few(usage_rows, staff_client, django_assert_max_num_queries):
    # session, user, capped count, page, 3 recent-value filters, tenants, keys
    with django_assert_max_num_queries(10):
        page(staff_client.get(CHANGELIST))


@pytest.mark.parametrize(
    "query,present,absent",
    [
        ({"status_class": "5xx"}, "upstream_error", "gpt-4o-mini"),
        ({"status_class": "ok"}, "gpt-4o-mini", "upstream_error"),
        ({"provider": "anthropic"}, "claude", "gpt-4o-mini"),
        ({"requested_model": "gpt-4o-mini"}, "gpt-4o-mini", "claude"),
        ({"endpoint": "chat"}, "gpt-4o-mini", "nothing-matches-this"),
        ({"cached__exact": "1"}, "10/0", "gpt-4o-mini"),
        ({"stream__exact": "1"}, "gpt-4o-mini", "claude"),
        ({"created_at__gte": "2000-01-01 00:00:00+00:00"}, "gpt-4o-mini", "nothing-matches-this"),
    ],
)
def test_changelist_filters(usage_rows, staff_client, query, present, absent):
    rows = results(staff_client.get(CHANGELIST, query))
    assert present in rows and absent not in rows


def test_tenant_and_key_filters(usage_rows, world, staff_client):
    response = staff_client.get(CHANGELIST, {"tenant": world.globex.pk})
    assert "1000/1000" in results(response) and "gpt-4o-mini" not in results(response)
    # With a tenant chosen, the key filter offers only that tenant's keys.
    html = page(response)
    assert world.outsider_key.prefix in html and world.member_key.prefix not in html
    rows = results(staff_client.get(CHANGELIST, {"key": world.owner_key.pk}))
    assert "claude" in rows and "gpt-4o" not in rows


def test_search_by_request_id(usage_rows, staff_client):
    wanted = usage_rows.records[2].request_id
    rows = results(staff_client.get(CHANGELIST, {"q": wanted}))
    assert "10/0" in rows and "gpt-4o-mini" not in rows


def test_records_are_read_only(usage_rows, staff_client):
    record = UsageRecord.objects.first()
    assert staff_client.get("/admin/usage/usagerecord/add/").status_code == 403
    assert staff_client.post(f"/admin/usage/usagerecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    html = page(staff_client.get(f"/admin/usage/usagerecord/{record.pk}/change/"))
    assert record.request_id in html and 'name="_save"' not in html


def test_past_the_cap_the_count_says_more_than(usage_rows, staff_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    html = page(staff_client.get(CHANGELIST + "?all="))
    assert "more than 3 usage records" in html


def test_chart_shows_cost_and_tokens_per_day(usage_rows, staff_client):
    html = page(staff_client.get(CHART, {"days": "7"}))
    assert "Usage per day, last 7 days" in html
    assert html.count('class="bar cost"') == 8  # today and the 7 days before it
    assert "8.5000" not in html  # cost is per day, not a total
    assert "1.0000" in html  # acme's alice, 30 h ago: alone on her day
    # Drawn by the theme's own Chart.js from the canvas's data attribute: the page
    # adds no script of its own, and every script is a static file of the gateway's.
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all(re.fullmatch(r'<script src="/static/unfold/js/[^"]+"( defer)?>', tag) for tag in scripts)
    assert '<canvas class="chart"' in html and "Cost (USD)" in html.replace("&quot;", '"')


def test_chart_for_one_tenant(usage_rows, world, staff_client):
    html = page(staff_client.get(CHART, {"days": "30", "tenant": world.acme.pk}))
    assert "7.0000" not in html and "1.0000" in html
    html = page(staff_client.get(CHART, {"days": "30", "tenant": world.globex.pk}))
    assert "7.0000" in html and "2000" in html


def test_chart_clamps_days(usage_rows, staff_client):
    assert "last 365 days" in page(staff_client.get(CHART, {"days": "9999"}))
    assert "last 30 days" in page(staff_client.get(CHART, {"days": "x"}))


def test_chart_needs_staff(usage_rows, client):
    assert client.get(CHART).status_code == 302  # to the login page


def test_chart_with_no_records(db, staff_client):
    html = page(staff_client.get(CHART))
    assert html.count('class="bar cost"') == 31


def test_old_rows_are_listed_too(db, staff_client):
    UsageRecord.objects.bulk_create([make_record(ago=timedelta(days=400), requested_model="ancient-model")])
    assert "ancient-model" in page(staff_client.get(CHANGELIST))


# --- spend on the tenant, user and key pages -----------------------------------

KEYS = "/admin/accounts/apikey/"


def test_key_list_shows_each_keys_spend_over_its_period(usage_rows, world, staff_client):
    # Every key's period is `total`: all its records but cache hits.
    rows = results(staff_client.get(KEYS))
    member = rows.split(world.member_key.prefix, 1)[1].split("</tr>", 1)[0]
    outsider = rows.split(world.outsider_key.prefix, 1)[1].split("</tr>", 1)[0]
    assert "$101.50" in member and "all time" in member  # 0.5 + 1 + 100, 40 days ago included
    assert "$107.00" in outsider and "no limit" in outsider


def test_key_list_reads_spend_in_one_query_whatever_the_page_size(usage_rows, world, factory, staff_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page(staff_client.get(KEYS))
        assert len([q for q in captured if '"usage_usagerecord"' in q["sql"]]) == 1
        return len(captured)

    before = queries()
    for n in range(5):
        factory.make_key(world.member, name=f"extra-{n}", quota_period="daily", budget_usd="1")
    assert queries() == before


def test_quota_use_is_shown_against_the_keys_limits(world, staff_client, time_machine):
    time_machine.move_to(timezone.now().replace(hour=12), tick=True)  # at noon, "a second ago" is this month
    key = world.member_key
    key.quota_period, key.token_quota, key.budget_usd = "monthly", 1000, "2"
    key.save()
    UsageRecord.objects.bulk_create(
        [
            make_record(ago=timedelta(seconds=1), key=key, input_tokens=200, output_tokens=100, cost_usd="0.5"),
            make_record(ago=timedelta(days=40), key=key, input_tokens=5000, cost_usd="100"),  # last period
        ]
    )
    rows = results(staff_client.get(KEYS))
    member = rows.split(key.prefix, 1)[1].split("</tr>", 1)[0]
    assert "$0.5000" in member and "this month" in member
    assert "300 / 1,000 (30%)" in member and "$0.5000 / $2.00 (25%)" in member


def test_tenant_list_reads_this_month_and_the_change_page_the_whole_period(usage_rows, world, staff_client):
    world.acme.budget_usd = "1000"
    world.acme.save()
    rows = results(staff_client.get("/admin/accounts/tenant/"))
    acme = rows.split(">acme<", 1)[1].split("</tr>", 1)[0]
    assert "this month" in acme and "$100" not in acme  # the list never reads before this month
    assert "all-time limit: see its page" in acme
    html = page(staff_client.get(f"/admin/accounts/tenant/{world.acme.pk}/change/"))
    assert "$101.50" in html and "all time" in html  # acme's records ever, but the cache hit
    assert "$101.50 / $1,000.00 (10%)" in html


def test_user_change_page_shows_its_period_use(usage_rows, world, staff_client):
    html = page(staff_client.get(f"/admin/accounts/apiuser/{world.member.pk}/change/"))
    assert "Usage this period" in html and "$101.50" in html and "no limit" in html
