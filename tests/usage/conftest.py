"""A known set of usage records around the world fixture's tenants and keys."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.usage.records import Usage, make_record
from usage.models import UsageRecord


@pytest.fixture
def usage_rows(world) -> Usage:
    """Within the last 30 days: acme's alice (two models), acme's bob (a cache hit and an
    upstream error), globex's alice; and two rows of each tenant 40 days ago."""
    hours = lambda n: timedelta(hours=n)  # noqa: E731
    member, owner, outsider = world.member_key, world.owner_key, world.outsider_key
    records = [
        # 0 acme alice gpt-4o, 2 h ago
        make_record(ago=hours(2), key=member, username="alice", service="chat", requested_model="gpt-4o",
                    provider="openai", input_tokens=100, output_tokens=50, cost_usd="0.5", latency_ms=100),
        # 1 acme alice gpt-4o-mini, 30 h ago, some cached input tokens
        make_record(ago=hours(30), key=member, username="alice", service="chat", requested_model="gpt-4o-mini",
                    provider="openai", input_tokens=200, output_tokens=100, cached_tokens=50, cost_usd="1.0",
                    latency_ms=300, stream=True),
        # 2 acme bob claude, 80 h ago, served from the cache
        make_record(ago=hours(80), key=owner, username="bob", service="search", requested_model="claude",
                    provider="anthropic", input_tokens=10, cost_usd="0", latency_ms=5, cached=True),
        # 3 acme bob claude, 130 h ago, upstream error
        make_record(ago=hours(130), key=owner, username="bob", service="search", requested_model="claude",
                    provider="anthropic", input_tokens=30, cost_usd="0", latency_ms=50, status=502,
                    error_code="upstream_error"),
        # 4 globex alice gpt-4o, 3 h ago
        make_record(ago=hours(3), key=outsider, username="alice", service="chat", requested_model="gpt-4o",
                    provider="openai", input_tokens=1000, output_tokens=1000, cost_usd="7.0", latency_ms=1000),
        # 5, 6: outside a 30-day window
        make_record(ago=timedelta(days=40), key=member, username="alice", service="chat", requested_model="gpt-4o",
                    provider="openai", input_tokens=5000, output_tokens=5000, cost_usd="100", latency_ms=10),
        make_record(ago=timedelta(days=40), key=outsider, username="alice", service="chat", requested_model="gpt-4o",
                    provider="openai", input_tokens=5000, output_tokens=5000, cost_usd="100", latency_ms=10,
                    status=500),
    ]  # fmt: skip
    UsageRecord.objects.bulk_create(records)
    return Usage(records)
