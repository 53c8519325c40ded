"""The admin dashboard (gateway/dashboard.py, templates/admin/index.html)."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert
from tests.usage.records import make_record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
DASHBOARD = "/admin/"


@pytest.fixture
def staff(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only"))
    return browser


@pytest.fixture
def traffic(world, factory, time_machine):
    """Today: two calls by acme's member on `primary` (one failed), one cache hit by
    globex; 40 days ago, a call that must count nowhere on the dashboard. At noon
    (UTC), so that "a second ago" is today and this month."""
    time_machine.move_to(timezone.now().replace(hour=12, minute=0), tick=True)
    factory.make_provider("primary")
    UsageRecord.objects.bulk_create(
        [
            make_record(ago=timedelta(seconds=2), key=world.member_key, provider="primary", input_tokens=100,
                        output_tokens=50, cost_usd="0.25", latency_ms=120),
            make_record(ago=timedelta(seconds=1), key=world.member_key, provider="primary", status=502,
                        error_code="upstream_error", latency_ms=900),
            make_record(ago=timedelta(seconds=1), key=world.outsider_key, provider="primary", input_tokens=10,
                        cached=True),
            make_record(ago=timedelta(days=40), key=world.outsider_key, provider="primary", input_tokens=9000,
                        cost_usd="999"),
        ]
    )  # fmt: skip
    return world


def page(response) -> str:
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def text_of(html: str, element_id: str) -> str:
    return html_lib.unescape(re.search(rf'id="{element_id}">([^<]*)<', html).group(1))


def test_the_dashboard_is_the_admin_index_with_the_gateways_branding(traffic, staff):
    html = page(staff.get(DASHBOARD))
    assert "<title> Dashboard | LLM Gateway</title>" in html
    assert "Django administration" not in html and "Django site admin" not in html


def test_todays_requests_tokens_and_cost(traffic, staff):
    html = page(staff.get(DASHBOARD))
    assert text_of(html, "today-requests") == "3"
    assert text_of(html, "today-tokens") == "160"
    assert text_of(html, "today-cost") == "$0.2500"


def test_health_from_the_health_report(traffic, staff):
    html = page(staff.get(DASHBOARD))
    assert re.fullmatch(r"\d+", text_of(html, "health-score"))
    assert re.search(r'id="health-status">\s*<span[^>]*>\s*(healthy|degraded|unhealthy)', html)


def test_each_provider_with_its_circuit_and_recent_traffic(traffic, staff):
    html = page(staff.get(DASHBOARD))
    providers = html.split("dashboard-providers", 1)[1].split("dashboard-alerts", 1)[0]
    assert ">primary</a>" in providers and "closed" in providers
    assert "33.3%" in providers  # one failure of three answered calls (the cache hit's included)
    assert "0.2" in providers  # 3 requests over 15 minutes


def test_open_alerts_are_listed_and_resolved_ones_are_not(traffic, staff):
    common = {"metric_path": "summary.error_rate", "condition": ">", "threshold": 0.1, "value": 0.5}
    Alert.objects.create(rule_name="errors-high", severity="critical", status="active", message="Errors high", **common)
    Alert.objects.create(rule_name="slow", severity="warning", status="acknowledged", message="Slow now", **common)
    Alert.objects.create(rule_name="old", severity="error", status="resolved", message="Long gone", **common)
    html = page(staff.get(DASHBOARD))
    alerts = html.split("dashboard-alerts", 1)[1]
    assert "Open alerts (2)" in html
    assert "Errors high" in alerts and "Slow now" in alerts and "Long gone" not in alerts


def test_top_tenants_and_keys_this_month(traffic, staff):
    html = page(staff.get(DASHBOARD))
    tenants = html.split("dashboard-top-tenants", 1)[1].split("dashboard-top-keys", 1)[0]
    keys = html.split("dashboard-top-keys", 1)[1]
    assert "this month" in html
    assert tenants.index("acme") < tenants.index("globex")  # $0.25 against $0 (its $999 is 40 days old)
    assert "$999" not in html
    assert traffic.member_key.prefix in keys and "$0.2500" in keys


def test_a_real_chart_of_the_last_30_days(traffic, staff):
    html = page(staff.get(DASHBOARD))
    canvas = re.search(r'<canvas class="chart"[^>]*data-value="([^"]*)"', html)
    data = json.loads(html_lib.unescape(canvas.group(1)))
    cost, tokens = data["datasets"]
    assert len(data["labels"]) == 31 and cost["data"][-1] == 0.25 and tokens["data"][-1] == 160
    assert sum(cost["data"]) == 0.25  # 40 days ago is off the chart
    assert '<script src="/static/unfold/js/chart/chart.js">' in html  # Chart.js from the gateway, no CDN


def test_every_usage_query_is_bounded_by_created_at(traffic, staff):
    with CaptureQueriesContext(connection) as queries:
        page(staff.get(DASHBOARD))
    usage = [q["sql"] for q in queries if '"usage_usagerecord"' in q["sql"]]
    assert usage and all('"usage_usagerecord"."created_at" >=' in sql for sql in usage)


def test_staff_without_permissions_see_health_only(traffic, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    browser = Client()
    browser.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        html = page(browser.get(DASHBOARD))
    assert "health-score" in html and "today-requests" not in html and "dashboard-providers" not in html
    assert not [q for q in queries if '"cost_usd"' in q["sql"]]  # the health report reads traffic, not spend
    user.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    browser.force_login(django_user_model.objects.get(pk=user.pk))
    assert "today-requests" in page(browser.get(DASHBOARD))
