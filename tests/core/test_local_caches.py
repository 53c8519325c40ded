"""core.local_caches: every per-process cache registers itself, and one call empties them all."""

from __future__ import annotations

import asyncio

from accounts import keycache
from core import counters, local_caches
from core.counters import Check
from gateway import response_cache
from providers import registry
from providers.circuit import CircuitConfig, circuits


def test_clear_all_empties_every_cache_of_the_process(proxy_world, upstream, settings):
    settings.REDIS_URL = ""  # the in-process side of each cache

    async def fill() -> None:
        await keycache.lookup(proxy_world.member_raw)
        await registry.current()
        await circuits.record_failure("primary", CircuitConfig())
        await counters.reserve([Check("gw:test", "rpm", "key", 10, 1, 60)])
        response_cache.memory.set("gw:rc:test", b"{}", ttl=60, max_entries=10)

    asyncio.run(fill())
    assert keycache._local and registry._state.snapshot and circuits._view
    assert counters.memory.values and response_cache.memory.entries

    local_caches.clear_all()

    assert not keycache._local and registry._state.snapshot is None and not circuits._view
    assert not counters.memory.values and not response_cache.memory.entries
