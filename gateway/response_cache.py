"""Exact-match response cache for chat, completions and embeddings.

The key is the tenant, the endpoint, whether it streams, and the request
normalized: every parameter with its keys sorted, messages in their order,
without the fields that do not change the answer (`user`, `stream_options`,
`metadata`). One tenant never reads another's entries: the tenant is in the key.

Entries live in Redis when REDIS_URL is set (shared by every process), else in
a size-bounded in-process LRU. Only complete, successful answers are stored;
a stream is stored as its chunks and replayed as the same SSE chunks.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from core import local_caches, shared_redis

IGNORED_FIELDS = frozenset({"user", "stream_options", "metadata", "stream"})
PREFIX = "gw:rc:"


@dataclass(slots=True)
class Entry:
    provider: str
    model: str
    usage: dict | None
    data: dict | None = None  # a complete answer
    chunks: list[bytes] | None = None  # or the chunks of a stream

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "provider": self.provider,
                "model": self.model,
                "usage": self.usage,
                "data": self.data,
                "chunks": [c.decode() for c in self.chunks] if self.chunks is not None else None,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        value = orjson.loads(raw)
        chunks = value["chunks"]
        return cls(
            value["provider"],
            value["model"],
            value["usage"],
            value["data"],
            [c.encode() for c in chunks] if chunks is not None else None,
        )


def bypass(cache_control: str | None) -> tuple[bool, bool]:
    """(skip lookup, skip store) from the request's Cache-Control."""
    value = (cache_control or "").lower()
    no_store = "no-store" in value
    return no_store or "no-cache" in value, no_store


def cache_key(tenant_id: int, endpoint: str, body: dict, stream: bool) -> str:
    normalized = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    digest = hashlib.sha256(orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{PREFIX}{tenant_id}:{endpoint}:{'s' if stream else 'j'}:{digest}"


class MemoryCache:
    """LRU with a TTL per entry, bounded to `max_entries`."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        hit = self.entries.get(key)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return hit[1]

    def set(self, key: str, value: bytes, ttl: int, max_entries: int) -> None:
        self.entries[key] = (time.monotonic() + ttl, value)
        self.entries.move_to_end(key)
        while len(self.entries) > max_entries:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


memory = MemoryCache()
local_caches.register(memory.clear)


async def get(key: str) -> Entry | None:
    redis = shared_redis.async_redis()
    raw = memory.get(key) if redis is None else await redis.get(key)
    return Entry.decode(raw) if raw is not None else None


async def put(key: str, entry: Entry, config: dict) -> None:
    ttl = int(config.get("ttl", 3600))
    if ttl <= 0:
        return
    raw = entry.encode()
    redis = shared_redis.async_redis()
    if redis is None:
        memory.set(key, raw, ttl, int(config.get("max_entries", 10_000)))
    else:
        await redis.set(key, raw, ex=ttl)


async def replay():
    """What follows a cached stream's first batch: nothing, it is all one batch."""
    for batch in ():
        yield batch
