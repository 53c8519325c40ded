"""GET /metrics: recent figures per provider and overall, from the usage table,
for admin keys; right whichever worker process served the traffic."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.live import DaphneGateway, flush_usage
from tests.mock_upstream import status
from tests.usage.records import make_record
from usage.models import UsageRecord

FIGURES = {
    "total_requests", "successful_requests", "failed_requests", "success_rate", "error_rate", "avg_response_time",
    "p50_latency_ms", "p95_latency_ms", "total_tokens", "requests_per_minute",
}  # fmt: skip
MIN = timedelta(minutes=1)


def save(*records) -> None:
    UsageRecord.objects.bulk_create(records)


@pytest.mark.django_db
def test_metrics_needs_an_admin_key(api, as_key, admin_api, world):
    assert api.get("/metrics").status_code == 401
    refused = as_key(world.member_raw).get("/metrics")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_permissions"
    assert as_key(world.owner_raw).get("/metrics").status_code == 200
    assert admin_api.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_figures_per_provider_and_summary(admin_api, factory):
    factory.make_provider("primary")
    factory.make_provider("idle")
    save(
        make_record(ago=MIN, provider="primary", latency_ms=100, input_tokens=10, output_tokens=5),
        make_record(ago=MIN, provider="primary", latency_ms=300, status=502),
        make_record(ago=MIN, provider="", latency_ms=2, status=429),  # refused before routing: summary only
    )
    body = admin_api.get("/metrics").json()
    assert set(body) == {"window_minutes", "since", "providers", "summary"}
    assert set(body["providers"]) == {"primary", "idle"}
    assert all(set(figures) == FIGURES for figures in [*body["providers"].values(), body["summary"]])
    primary = body["providers"]["primary"]
    assert (primary["total_requests"], primary["successful_requests"], primary["failed_requests"]) == (2, 1, 1)
    assert (primary["success_rate"], primary["error_rate"], primary["avg_response_time"]) == (0.5, 0.5, 200.0)
    assert (primary["p50_latency_ms"], primary["p95_latency_ms"], primary["total_tokens"]) == (200.0, 290.0, 15)
    assert body["providers"]["idle"]["total_requests"] == 0 and body["providers"]["idle"]["success_rate"] == 1.0
    summary = body["summary"]
    assert (summary["total_requests"], summary["failed_requests"]) == (3, 1)
    assert summary["requests_per_minute"] == round(3 / 15, 2)


@pytest.mark.django_db
def test_minutes_sets_the_window(admin_api):
    save(make_record(ago=MIN, provider="a"), make_record(ago=20 * MIN, provider="a"))
    default = admin_api.get("/metrics").json()
    assert default["window_minutes"] == 15 and default["summary"]["total_requests"] == 1
    wider = admin_api.get("/metrics?minutes=30").json()
    assert wider["window_minutes"] == 30 and wider["providers"]["a"]["total_requests"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize("minutes", ["0", "61", "abc", "1.5", "-3"])
def test_bad_minutes_is_400(admin_api, minutes):
    response = admin_api.get("/metrics", {"minutes": minutes})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request" and response.json()["error"]["param"] == "minutes"


@pytest.mark.django_db
def test_tenant_admin_sees_its_own_tenants_traffic(as_key, admin_api, world):
    save(
        make_record(ago=MIN, key=world.member_key, provider="a"),
        make_record(ago=MIN, key=world.outsider_key, provider="b", status=500),
    )
    mine = as_key(world.owner_raw).get("/metrics").json()
    assert set(mine["providers"]) == {"a"}  # no provider row: only what its traffic used
    assert mine["summary"]["total_requests"] == 1 and mine["summary"]["failed_requests"] == 0
    assert admin_api.get("/metrics").json()["summary"]["total_requests"] == 2


@pytest.mark.django_db
def test_prometheus_text_stays_at_its_own_path(api):
    response = api.get("/metrics/prometheus")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")


def test_counters_match_the_requests_made_through_two_processes(live_gateway, proxy_world, factory, mock_upstream):
    """N calls through the in-process server and M through Daphne in its own process,
    both writing the same database (and Redis, when set): /metrics adds them all up.
    A provider and a tenant of this test's own, so a late record of an earlier
    test's traffic (the live server outlives tests) cannot count here."""
    factory.make_provider("two-processes", base_url=mock_upstream.openai_base)
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}
    daphne = DaphneGateway()
    tokens = 0
    try:
        for base, calls in ((live_gateway.v1, 4), (daphne.v1, 3)):
            for _ in range(calls):
                response = httpx.post(base + "/chat/completions", json=chat, headers=headers, timeout=10)
                assert response.status_code == 200, response.text
                tokens += response.json()["usage"]["total_tokens"]
            mock_upstream.push(status(500))
            assert httpx.post(base + "/chat/completions", json=chat, headers=headers, timeout=10).status_code == 502
    finally:
        daphne.stop()  # writes what it still holds (at exit), or left it queued in Redis
    flush_usage()

    def metrics(key: str) -> dict:
        response = httpx.get(live_gateway.url + "/metrics", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        return response.json()

    mine = metrics(ADMIN_KEY)["providers"]["two-processes"]
    assert (mine["total_requests"], mine["successful_requests"], mine["failed_requests"]) == (9, 7, 2)
    assert mine["total_tokens"] == tokens and mine["error_rate"] == round(2 / 9, 4)
    summary = metrics(proxy_world.owner_raw)["summary"]  # the tenant admin: this tenant's traffic
    assert (summary["total_requests"], summary["failed_requests"], summary["total_tokens"]) == (9, 2, tokens)
