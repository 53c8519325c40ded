"""Prometheus metrics (`GET /metrics/prometheus`): what one call adds, cache
hits, refusals, circuit state, and values added up across processes."""

from __future__ import annotations

import httpx
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from providers.models import ConfigState
from tests.mock_upstream import status

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "count me"}]}


def scrape() -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of the whole exposition. Through
    Django's test client: the live gateway runs in this process, so its values
    are here (and a sync view on the live server would leave a database
    connection open in a thread of its own)."""
    response = Client().get("/metrics/prometheus")
    assert response.status_code == 200
    assert response["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(live_gateway, raw: str, json=CHAT) -> httpx.Response:
    return httpx.post(live_gateway.v1 + "/chat/completions", json=json, headers={"Authorization": f"Bearer {raw}"})


def test_a_call_counts_its_request_latency_tokens_and_cost(live_gateway, proxy_world, upstream):
    before = scrape()
    response = post(live_gateway, proxy_world.member_raw)
    assert response.status_code == 200
    after = scrape()
    request = {"endpoint": "chat", "provider": "primary", "model": "gpt-4o-mini", "status": "200", "cached": "false"}
    assert (
        value(after, "llm_gateway_requests_total", **request)
        == value(before, "llm_gateway_requests_total", **request) + 1
    )
    for name in ("llm_gateway_request_duration_seconds_count", "llm_gateway_upstream_duration_seconds_count"):
        labels = {"endpoint": "chat", "provider": "primary"} if "request" in name else {"provider": "primary"}
        assert value(after, name, **labels) == value(before, name, **labels) + 1
    usage = response.json()["usage"]
    for kind, tokens in (("input", usage["prompt_tokens"]), ("output", usage["completion_tokens"])):
        labels = {"provider": "primary", "model": "gpt-4o-mini", "type": kind}
        assert (
            value(after, "llm_gateway_tokens_total", **labels) - value(before, "llm_gateway_tokens_total", **labels)
            == tokens
        )
    cost = {"provider": "primary", "model": "gpt-4o-mini"}
    assert value(after, "llm_gateway_cost_usd_total", **cost) > value(before, "llm_gateway_cost_usd_total", **cost)


def test_errors_are_counted_by_status(live_gateway, proxy_world, upstream):
    before = scrape()
    assert post(live_gateway, proxy_world.member_raw, json={"model": "gpt-4o-mini"}).status_code == 400
    after = scrape()
    labels = {"endpoint": "chat", "provider": "gateway", "model": "", "status": "400", "cached": "false"}
    assert (
        value(after, "llm_gateway_requests_total", **labels)
        == value(before, "llm_gateway_requests_total", **labels) + 1
    )


def test_cache_hits_and_misses_give_the_hit_rate(live_gateway, proxy_world, upstream):
    ConfigState.objects.update_or_create(pk=1, defaults={"data": {"cache": {"enabled": True, "ttl": 60}}})
    before = scrape()
    body = {**CHAT, "messages": [{"role": "user", "content": "cache me for the metrics"}]}
    assert [post(live_gateway, proxy_world.member_raw, json=body).headers["x-cache"] for _ in range(3)] == [
        "MISS", "HIT", "HIT",
    ]  # fmt: skip
    after = scrape()
    hits = value(after, "llm_gateway_cache_lookups_total", endpoint="chat", result="hit") - value(
        before, "llm_gateway_cache_lookups_total", endpoint="chat", result="hit"
    )
    misses = value(after, "llm_gateway_cache_lookups_total", endpoint="chat", result="miss") - value(
        before, "llm_gateway_cache_lookups_total", endpoint="chat", result="miss"
    )
    assert (hits, misses) == (2, 1)
    cached = {"endpoint": "chat", "provider": "primary", "model": "gpt-4o-mini", "status": "200", "cached": "true"}
    assert (
        value(after, "llm_gateway_requests_total", **cached) - value(before, "llm_gateway_requests_total", **cached)
        == 2
    )


def test_rate_limit_refusals_are_counted_by_level_and_kind(live_gateway, proxy_world, upstream):
    proxy_world.member_key.rpm = 1
    proxy_world.member_key.save()
    before = scrape()
    statuses = [post(live_gateway, proxy_world.member_raw).status_code for _ in range(2)]
    after = scrape()
    assert statuses == [200, 429]
    name = "llm_gateway_rate_limited_total"
    assert value(after, name, level="key", kind="rpm") == value(before, name, level="key", kind="rpm") + 1


def test_circuit_state_is_reported_per_provider(live_gateway, proxy_world, upstream, mock_upstream):
    ConfigState.objects.update_or_create(
        pk=1, defaults={"data": {"circuit_breaker": {"failure_threshold": 1, "recovery_timeout": 60}}}
    )
    assert value(scrape(), "llm_gateway_circuit_state", provider="primary") == 0
    mock_upstream.set_default(status(500))
    assert post(live_gateway, proxy_world.member_raw).status_code == 502
    assert value(scrape(), "llm_gateway_circuit_state", provider="primary") == 2


def test_only_get(db):
    response = Client(enforce_csrf_checks=True).post("/metrics/prometheus")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
