"""What agents spend, kept apart on the usage record: cache reads and writes,
reasoning tokens, and the agent's session."""

from __future__ import annotations

import httpx
import pytest

from providers.adapters import Usage
from tests.live import flush_usage
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]}


@pytest.mark.parametrize("header", ["X-Session-Id", "X-Claude-Code-Session-Id"])
def test_the_agent_session_is_recorded(live_gateway, proxy_world, upstream, header):
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}", header: "sess-42"}
    assert httpx.post(live_gateway.v1 + "/chat/completions", json=CHAT, headers=headers).status_code == 200
    flush_usage()
    assert UsageRecord.objects.get(key_id=proxy_world.member_key.pk).session_id == "sess-42"


def test_a_call_without_a_session_records_none(live_gateway, proxy_world, upstream):
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    httpx.post(live_gateway.v1 + "/chat/completions", json=CHAT, headers=headers)
    flush_usage()
    assert UsageRecord.objects.get(key_id=proxy_world.member_key.pk).session_id == ""


def test_openai_usage_keeps_cache_reads_writes_and_reasoning_apart():
    usage = Usage.from_openai(
        {
            "prompt_tokens": 130,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
            "completion_tokens_details": {"reasoning_tokens": 25},
        }
    )
    assert usage == Usage(130, 40, cached_tokens=100, cache_write_tokens=20, reasoning_tokens=25)
    litellm_style = Usage.from_openai({"prompt_tokens": 50, "completion_tokens": 1, "cache_creation_input_tokens": 9})
    assert litellm_style.cache_write_tokens == 9
    assert Usage.from_openai({"prompt_tokens": 1, "prompt_tokens_details": None}).cached_tokens == 0
