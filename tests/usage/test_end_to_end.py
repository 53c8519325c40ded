"""Usage numbers in every report match the requests made through the gateway."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.live import flush_usage
from tests.mock_upstream import status


@pytest.fixture
def traffic(live_gateway, proxy_world, upstream, mock_upstream):
    """3 chats + 1 upstream failure by the member, 2 generate calls by the owner."""
    member = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    owner = {"Authorization": f"Bearer {proxy_world.owner_raw}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}
    tokens = 0
    for _ in range(3):
        usage = httpx.post(live_gateway.v1 + "/chat/completions", json=chat, headers=member).json()["usage"]
        tokens += usage["total_tokens"]
    mock_upstream.push(status(500))
    assert httpx.post(live_gateway.v1 + "/chat/completions", json=chat, headers=member).status_code == 502
    form = {"user_id": "customer-9", "service": "billing", "prompt": "four five", "model": "gpt-4o-mini"}
    for _ in range(2):
        answer = httpx.post(live_gateway.url + "/api/v1/generate", json=form, headers=owner).json()
        tokens += answer["input_tokens"] + answer["output_tokens"]
    flush_usage()
    return tokens


def report(live_gateway, path: str) -> dict:
    response = httpx.get(live_gateway.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_summary_matches_the_requests(live_gateway, traffic):
    summary = report(live_gateway, "/api/v1/usage/summary?days=1")
    assert summary["total_requests"] == 6
    assert summary["error_requests"] == 1
    assert summary["total_tokens"] == traffic
    assert summary["total_cost_usd"] > 0 and summary["cached_requests"] == 0


def test_grouped_reports_match_the_requests(live_gateway, proxy_world, traffic):
    by_key = {row["key_id"]: row for row in report(live_gateway, "/api/v1/usage/by-key?days=1")["data"]}
    assert by_key[proxy_world.member_key.pk]["requests"] == 4
    assert by_key[proxy_world.member_key.pk]["errors"] == 1
    assert by_key[proxy_world.owner_key.pk]["requests"] == 2
    by_service = {
        row["service"]: row["requests"] for row in report(live_gateway, "/api/v1/usage/by-service?days=1")["data"]
    }
    assert by_service == {"": 4, "billing": 2}
    by_customer = {
        row["username"]: row["requests"] for row in report(live_gateway, "/api/v1/usage/by-customer?days=1")["data"]
    }
    assert by_customer == {"member": 4, "customer-9": 2}
    by_model = report(live_gateway, "/api/v1/usage/by-model?days=1")["data"]
    assert [(row["model"], row["requests"], row["total_tokens"]) for row in by_model] == [("gpt-4o-mini", 6, traffic)]
    by_provider = report(live_gateway, "/api/v1/usage/by-provider?days=1")["data"]
    assert sum(row["requests"] for row in by_provider) == 6
    timeseries = report(live_gateway, "/api/v1/usage/timeseries?days=1&bucket=hour")["data"]
    assert sum(row["requests"] for row in timeseries) == 6


def test_list_costs_matches_the_requests(live_gateway, traffic):
    costs = {row["username"]: row for row in report(live_gateway, "/admin/list_costs?last_hours=1")["costs"]}
    assert costs["member"]["total_requests"] == 4 and costs["customer-9"]["total_requests"] == 2
    total = sum(row["total_input_tokens"] + row["total_output_tokens"] for row in costs.values())
    assert total == traffic


def test_failed_upstream_call_is_recorded_without_tokens_or_cost(live_gateway, proxy_world, upstream, mock_upstream):
    from usage.models import UsageRecord

    mock_upstream.push(status(500))
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(live_gateway.v1 + "/chat/completions", json=chat, headers=headers).status_code == 502
    flush_usage()
    record = UsageRecord.objects.get(key_id=proxy_world.member_key.pk)
    assert (record.status, record.error_code, record.attempts) == (502, "upstream_error", 1)
    assert (record.input_tokens, record.output_tokens, record.cost_usd, record.estimated) == (0, 0, 0, False)
