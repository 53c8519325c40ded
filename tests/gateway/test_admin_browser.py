"""The admin in a real browser: headless Chromium (Debian's package) driven by
Playwright, against the whole ASGI app served on 127.0.0.1, after real traffic
through the gateway. What the pages show is checked against that traffic;
screenshots of each page are left in the test's tmp_path."""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum
from playwright.sync_api import expect, sync_playwright

from providers.models import Price
from tests.live import flush_usage
from usage.models import UsageRecord
from usage.spend import usd

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's hosts,
# which this machine's closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-test-password-4711"
BRANDING = "LLM Gateway"


@dataclass
class Traffic:
    cost: Decimal
    last_used_at: datetime


@pytest.fixture
def traffic(live_gateway, proxy_world, upstream) -> Traffic:
    """Three chat completions by the member's key, written to the usage table,
    at a price that makes their cost show. (Read here: while Playwright's sync
    API runs, this thread cannot use the ORM.)"""
    Price.objects.create(model="gpt-4o-mini", input="1000", output="2000")
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "how are the providers doing?"}]}
    for _ in range(3):
        response = httpx.post(live_gateway.v1 + "/chat/completions", json=chat, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
    flush_usage()
    records = UsageRecord.objects.filter(key_id=proxy_world.member_key.pk)
    assert records.count() == 3
    proxy_world.member_key.refresh_from_db()
    assert proxy_world.member_key.last_used_at is not None
    return Traffic(records.aggregate(cost=Sum("cost_usd"))["cost"], proxy_world.member_key.last_used_at)


@pytest.fixture
def browser_page(live_gateway, django_user_model):
    """A logged-out page in headless Chromium, and every /static/ answer it got."""
    django_user_model.objects.create_superuser("operator", "ops@example.com", PASSWORD)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.static_answers = {}

            def record(response) -> None:
                if response.url.startswith(live_gateway.url + "/static/"):
                    page.static_answers[response.url] = response.status

            page.on("response", record)
            yield page
        finally:
            browser.close()
            # Django serves each request in a thread of its own, whose database
            # connection only closes once collected: before the test database is dropped.
            gc.collect()


def log_in(page, base_url: str) -> None:
    page.goto(base_url + "/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    assert BRANDING in page.title() and "Django" not in page.title()
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    expect(page).to_have_url(base_url + "/admin/")


def chart_series(page, selector: str) -> dict:
    """The datasets Chart.js drew on a canvas: proof that a chart was rendered."""
    return page.evaluate(
        """(selector) => {
            const chart = Chart.getChart(document.querySelector(selector));
            return chart && Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data]));
        }""",
        selector,
    )


# Django serves static files under ASGI by reading them whole in a thread: fine for the admin's few.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_an_operator_sees_the_gateways_traffic_in_the_admin(live_gateway, proxy_world, traffic, browser_page, tmp_path):
    page, base = browser_page, live_gateway.url
    log_in(page, base)

    # The dashboard: branding, today's figures, the provider, the per-day chart.
    assert page.title() == f"Dashboard | {BRANDING}"
    expect(page.locator("#today-requests")).to_have_text("3")
    expect(page.locator("#today-cost")).to_have_text(usd(traffic.cost))
    expect(page.locator("#health-score")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator(".dashboard-providers")).to_contain_text("primary")
    expect(page.locator(".dashboard-top-keys")).to_contain_text(proxy_world.member_key.prefix)
    series = chart_series(page, ".dashboard-chart canvas")
    assert series is not None and len(series["Cost (USD)"]) == 31
    assert Decimal(str(series["Cost (USD)"][-1])).quantize(Decimal("1e-6")) == traffic.cost.quantize(Decimal("1e-6"))
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    # The key list: the member key's spend over its period (total: all time) and its last use.
    page.goto(base + "/admin/accounts/apikey/")
    row = page.locator("#result_list tr", has_text=proxy_world.member_key.prefix)
    expect(row).to_contain_text(usd(traffic.cost))
    expect(row).to_contain_text("all time")
    expect(row.locator("td.field-last_used_at")).to_contain_text(str(traffic.last_used_at.year))
    assert page.title().endswith(f"| {BRANDING}")
    page.screenshot(path=tmp_path / "keys.png", full_page=True)

    # An alert rule's form, filled in and saved.
    page.goto(base + "/admin/alerts/alertrule/add/")
    page.fill("#id_name", "primary-errors")
    page.fill("#id_metric_path", "providers.primary.error_rate")
    page.select_option("#id_condition", ">")
    page.fill("#id_threshold", "0.5")
    page.screenshot(path=tmp_path / "alert-rule-form.png", full_page=True)
    page.click("button[name=_save]")
    expect(page.locator("#result_list")).to_contain_text("primary-errors")

    # The usage chart: today's bar is the traffic's cost; today's row counts its requests.
    page.goto(base + "/admin/usage/usagerecord/chart/")
    series = chart_series(page, "canvas.chart")
    assert Decimal(str(series["Cost (USD)"][-1])).quantize(Decimal("1e-6")) == traffic.cost.quantize(Decimal("1e-6"))
    expect(page.locator(".usage-table tbody tr").last.locator("td").nth(1)).to_have_text("3")
    page.screenshot(path=tmp_path / "usage-chart.png", full_page=True)

    # The theme's CSS and JS (Chart.js included) came from the gateway itself.
    answers = page.static_answers
    assert any(url.endswith("/unfold/css/styles.css") for url in answers)
    assert any(url.endswith("/unfold/js/chart/chart.js") for url in answers)
    assert set(answers.values()) == {200}, answers
    print(f"\nscreenshots: {tmp_path}")
