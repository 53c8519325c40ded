"""The response cache: hits and misses, streams replayed with the same chunk
shape, bypass, only successes stored, tenant isolation, accounting."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from gateway.response_cache import MemoryCache
from providers.models import ConfigState
from tests.live import flush_usage
from tests.mock_upstream import status
from tests.openai_schema import validate
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "cache me"}]}


@pytest.fixture
def cache_on(proxy_world, upstream):
    ConfigState.objects.update_or_create(pk=1, defaults={"data": {"cache": {"enabled": True, "ttl": 60}}})


def post(live_gateway, raw: str, json=CHAT, path="/chat/completions", **headers) -> httpx.Response:
    headers = {"Authorization": f"Bearer {raw}", **headers}
    return httpx.post(live_gateway.v1 + path, json=json, headers=headers, timeout=10)


def stream_lines(live_gateway, raw: str, json: dict) -> tuple[httpx.Headers, list[str]]:
    headers = {"Authorization": f"Bearer {raw}"}
    with httpx.stream("POST", live_gateway.v1 + "/chat/completions", json=json, headers=headers, timeout=10) as r:
        return r.headers, [line for line in r.iter_lines() if line]


def test_second_identical_request_is_a_hit(live_gateway, proxy_world, cache_on, mock_upstream):
    first = post(live_gateway, proxy_world.member_raw)
    second = post(live_gateway, proxy_world.member_raw)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert len(mock_upstream.requests) == 1
    body = second.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"] == first.json()["choices"]
    assert body["_proxy_info"]["request_id"] != first.json()["_proxy_info"]["request_id"]
    assert second.headers["x-gateway-provider"] == "primary"


def test_cache_is_off_unless_configured(live_gateway, proxy_world, upstream, mock_upstream):
    post(live_gateway, proxy_world.member_raw)
    assert post(live_gateway, proxy_world.member_raw).headers["x-cache"] == "MISS"
    assert len(mock_upstream.requests) == 2


def test_cached_stream_is_replayed_as_the_same_chunks(live_gateway, proxy_world, cache_on, mock_upstream):
    body = {**CHAT, "stream": True}
    first_headers, first = stream_lines(live_gateway, proxy_world.member_raw, body)
    second_headers, second = stream_lines(live_gateway, proxy_world.member_raw, body)
    assert (first_headers["x-cache"], second_headers["x-cache"]) == ("MISS", "HIT")
    assert second_headers["content-type"].startswith("text/event-stream")
    assert second == first and second[-1] == "data: [DONE]"
    for chunk in chunks(second):
        validate("CreateChatCompletionStreamResponse", chunk)
    assert len(mock_upstream.requests) == 1


def chunks(lines: list[str]) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in lines if line != "data: [DONE]"]


def test_replayed_stream_honours_include_usage(live_gateway, proxy_world, cache_on):
    body = {**CHAT, "stream": True}
    stream_lines(live_gateway, proxy_world.member_raw, body)
    headers, lines = stream_lines(
        live_gateway, proxy_world.member_raw, {**body, "stream_options": {"include_usage": True}}
    )
    assert headers["x-cache"] == "HIT"
    assert chunks(lines)[-1]["usage"]["total_tokens"] > 0
    headers, plain = stream_lines(live_gateway, proxy_world.member_raw, body)
    assert headers["x-cache"] == "HIT"
    assert all(chunk.get("usage") is None for chunk in chunks(plain))


@pytest.mark.parametrize(
    "path,body",
    [
        ("/embeddings", {"model": "gpt-4o-mini", "input": ["a", "b"]}),
        ("/completions", {"model": "gpt-4o-mini", "prompt": "say this"}),
    ],
)
def test_embeddings_and_completions_are_cached(live_gateway, proxy_world, cache_on, mock_upstream, path, body):
    first = post(live_gateway, proxy_world.member_raw, json=body, path=path)
    second = post(live_gateway, proxy_world.member_raw, json=body, path=path)
    assert second.headers["x-cache"] == "HIT" and second.json()["data" if "input" in body else "choices"]
    assert first.status_code == second.status_code == 200 and len(mock_upstream.requests) == 1


def test_user_field_does_not_split_the_cache(live_gateway, proxy_world, cache_on):
    post(live_gateway, proxy_world.member_raw, json={**CHAT, "user": "alice"})
    assert post(live_gateway, proxy_world.member_raw, json={**CHAT, "user": "bob"}).headers["x-cache"] == "HIT"


@pytest.mark.parametrize(
    "variant",
    [
        {"temperature": 0.5},
        {"messages": [{"role": "user", "content": "cache me"}, {"role": "user", "content": "and more"}]},
        {"model": "gpt-4o-mini", "max_tokens": 5},
    ],
)
def test_different_request_is_a_miss(live_gateway, proxy_world, cache_on, variant):
    post(live_gateway, proxy_world.member_raw)
    assert post(live_gateway, proxy_world.member_raw, json={**CHAT, **variant}).headers["x-cache"] == "MISS"


def test_message_order_matters(live_gateway, proxy_world, cache_on):
    a = {"role": "user", "content": "one"}
    b = {"role": "assistant", "content": "two"}
    c = {"role": "user", "content": "three"}
    post(live_gateway, proxy_world.member_raw, json={**CHAT, "messages": [a, b, c]})
    swapped = post(live_gateway, proxy_world.member_raw, json={**CHAT, "messages": [c, b, a]})
    assert swapped.headers["x-cache"] == "MISS"


def test_parameter_order_does_not_matter(live_gateway, proxy_world, cache_on):
    post(live_gateway, proxy_world.member_raw, json={**CHAT, "temperature": 0, "top_p": 1})
    reordered = {"top_p": 1, "temperature": 0, **CHAT}
    assert post(live_gateway, proxy_world.member_raw, json=reordered).headers["x-cache"] == "HIT"


def test_no_cache_bypasses_lookup_and_no_store_skips_storing(live_gateway, proxy_world, cache_on, mock_upstream):
    post(live_gateway, proxy_world.member_raw)
    bypass = post(live_gateway, proxy_world.member_raw, **{"Cache-Control": "no-cache"})
    assert bypass.headers["x-cache"] == "MISS" and len(mock_upstream.requests) == 2
    other = {**CHAT, "messages": [{"role": "user", "content": "never stored"}]}
    post(live_gateway, proxy_world.member_raw, json=other, **{"Cache-Control": "no-store"})
    assert post(live_gateway, proxy_world.member_raw, json=other).headers["x-cache"] == "MISS"


def test_errors_are_not_cached(live_gateway, proxy_world, cache_on, mock_upstream):
    mock_upstream.push(status(500))
    assert post(live_gateway, proxy_world.member_raw).status_code == 502
    again = post(live_gateway, proxy_world.member_raw)
    assert again.status_code == 200 and again.headers["x-cache"] == "MISS"


def test_one_tenant_never_reads_another_tenants_entries(live_gateway, proxy_world, cache_on, mock_upstream):
    post(live_gateway, proxy_world.member_raw)
    assert post(live_gateway, proxy_world.owner_raw).headers["x-cache"] == "HIT"  # same tenant, another key
    assert post(live_gateway, proxy_world.outsider_raw).headers["x-cache"] == "MISS"  # another tenant
    assert len(mock_upstream.requests) == 2


def test_hits_are_recorded_cached_with_tokens_and_no_cost(live_gateway, proxy_world, cache_on):
    post(live_gateway, proxy_world.member_raw)
    post(live_gateway, proxy_world.member_raw)
    flush_usage()
    miss, hit = UsageRecord.objects.filter(key_id=proxy_world.member_key.pk).order_by("created_at")
    assert (miss.cached, hit.cached) == (False, True)
    assert hit.cost_usd == 0 and miss.cost_usd > 0
    assert (hit.input_tokens, hit.output_tokens) == (miss.input_tokens, miss.output_tokens)
    assert hit.attempts == 0 and hit.provider == "primary"


def test_hits_do_not_use_the_token_quota(live_gateway, proxy_world, cache_on):
    first = post(live_gateway, proxy_world.member_raw)
    used = first.json()["usage"]["total_tokens"]
    proxy_world.member_key.token_quota = used + 1
    proxy_world.member_key.save()
    for _ in range(3):
        assert post(live_gateway, proxy_world.member_raw).status_code == 200  # hits: free


def test_generate_reports_cached(live_gateway, proxy_world, cache_on):
    form = {"user_id": "u1", "service": "svc", "prompt": "hello", "model": "gpt-4o-mini"}
    url = live_gateway.url + "/api/v1/generate"
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    first = httpx.post(url, json=form, headers=headers, timeout=10).json()
    second = httpx.post(url, json=form, headers=headers, timeout=10).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["content"] == first["content"] and second["cost_usd"] == 0


def test_entries_expire_after_their_ttl(live_gateway, proxy_world, upstream):
    ConfigState.objects.update_or_create(pk=1, defaults={"data": {"cache": {"enabled": True, "ttl": 1}}})
    post(live_gateway, proxy_world.member_raw)
    assert post(live_gateway, proxy_world.member_raw).headers["x-cache"] == "HIT"
    time.sleep(1.2)
    assert post(live_gateway, proxy_world.member_raw).headers["x-cache"] == "MISS"


def test_in_process_cache_is_bounded_least_recently_used_first():
    cache = MemoryCache()
    cache.set("a", b"1", 60, max_entries=2)
    cache.set("b", b"2", 60, max_entries=2)
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.set("c", b"3", 60, max_entries=2)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
