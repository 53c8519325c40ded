"""The per-process pooled HTTP client for upstream calls.

httpx.AsyncClient is bound to the event loop it first ran on; servers run one
loop, tests several, so the pool is per loop.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    pooled = _clients.get(loop)
    if pooled is None or pooled.is_closed:
        # Timeouts are set per request from each provider's config.
        pooled = httpx.AsyncClient(limits=LIMITS, timeout=None, follow_redirects=False, trust_env=False)
        _clients[loop] = pooled
    return pooled
