"""Redis clients for state that every gateway process shares (the key cache,
the routing generation, circuit breakers, quota and rate-limit counters, the
usage queue, the response cache).

None when REDIS_URL is unset: then there is one process and callers keep the
state in memory. The async client (`redis_client.LeanRedis`, pipelined, for the
request path) is bound to its event loop, so there is one per loop (tests
start several loops).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

from core import redis_client

_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def _timeouts() -> dict:
    return {"socket_timeout": settings.REDIS_TIMEOUT, "socket_connect_timeout": settings.REDIS_TIMEOUT}


def sync_redis() -> redis.Redis | None:
    global _sync_client
    if not settings.REDIS_URL:
        return None
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, **_timeouts())
    return _sync_client


_last: tuple = (None, None)  # (loop, client): the common case is one loop per process


def async_redis() -> redis_client.LeanRedis | aredis.Redis | None:
    global _last
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    if _last[0] is loop:
        return _last[1]
    client = _async_clients.get(loop)
    if client is None:
        url = settings.REDIS_URL
        if redis_client.supports(url):
            client = redis_client.LeanRedis(url, timeout=settings.REDIS_TIMEOUT)
        else:
            client = aredis.Redis.from_url(url, **_timeouts())
        _async_clients[loop] = client
    _last = (loop, client)
    return client


class LuaScript:
    """A Lua script run by its SHA (EVALSHA), sent in full only when Redis does
    not know it yet (first use, or after a restart or SCRIPT FLUSH)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, client, keys: list, args: list):
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)
