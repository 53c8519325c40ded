"""API key lookup for the /v1 path without a database query on a warm request.

Three tiers: this process (LOCAL_TTL seconds), Redis when configured, then the
database. Revoking, rotating or disabling deletes the Redis entry and this
process's entry at once, so every process refuses the key within LOCAL_TTL.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial

from channels.db import database_sync_to_async

from accounts.models import KEY_RE, ApiKey, hash_key
from core import jsonfast, local_caches, shared_redis
from core.singleflight import SingleFlight

LOCAL_TTL = 1.0
SHARED_TTL = 300
_local: dict[str, tuple[float, KeyInfo | None]] = {}
_inflight = SingleFlight()


def _limits(obj) -> dict:
    return {
        "token_quota": obj.token_quota,
        # Integer nano-USD, as the quota counters count: no Decimal on the request path.
        "budget_nano": int(obj.budget_usd * 10**9) if obj.budget_usd is not None else None,
        "quota_period": obj.quota_period,
        "rpm": obj.rpm,
        "tpm": obj.tpm,
    }


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the request path needs to know about a usable key (plain data, cacheable)."""

    id: int
    prefix: str
    tenant_id: int
    tenant: str
    user_id: int
    username: str
    is_admin: bool
    allowed_models: tuple[str, ...]
    expires_at: float | None
    max_parallel: int | None
    key_limits: dict
    user_limits: dict
    tenant_limits: dict

    @classmethod
    def from_key(cls, key: ApiKey) -> KeyInfo:
        return cls(
            id=key.pk,
            prefix=key.prefix,
            tenant_id=key.tenant_id,
            tenant=key.tenant.name,
            user_id=key.user_id,
            username=key.user.username,
            is_admin=key.is_admin,
            allowed_models=tuple(key.allowed_models or ()),
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            max_parallel=key.max_parallel,
            key_limits=_limits(key),
            user_limits=_limits(key.user),
            tenant_limits=_limits(key.tenant),
        )

    def allows_model(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _shared_key(digest: str) -> str:
    return f"gw:key:{digest}"


def _load(raw: str) -> KeyInfo | None:
    key = ApiKey.objects.verify(raw)
    return KeyInfo.from_key(key) if key else None


async def lookup(raw: str | None) -> KeyInfo | None:
    """The usable key for a presented plaintext, or None (401)."""
    if not raw or not KEY_RE.match(raw):
        return None
    digest = hash_key(raw)
    now = time.monotonic()
    hit = _local.get(digest)
    if hit is not None and hit[0] > now:
        info = hit[1]
    else:
        info = await _lookup_once(raw, digest)
    if info is not None and info.expired(time.time()):
        return None
    return info


async def _lookup_once(raw: str, digest: str) -> KeyInfo | None:
    """One lookup per key at a time in this process: concurrent requests with a
    key not cached yet (a cold start, a burst after expiry) share it instead of
    queueing one database query each on the sync thread."""
    return await _inflight.run(digest, partial(_lookup_and_keep, raw, digest))


async def _lookup_and_keep(raw: str, digest: str) -> KeyInfo | None:
    info = await _lookup_shared(raw, digest)
    _local[digest] = (time.monotonic() + LOCAL_TTL, info)
    return info


async def _lookup_shared(raw: str, digest: str) -> KeyInfo | None:
    redis = shared_redis.async_redis()
    if redis is not None:
        cached = await redis.get(_shared_key(digest))
        if cached is not None:
            data = jsonfast.loads(cached)
            return KeyInfo(**{**data, "allowed_models": tuple(data["allowed_models"])}) if data else None
    info = await database_sync_to_async(_load)(raw)
    if redis is not None:
        payload = jsonfast.dumps(asdict(info) if info else None)
        await redis.set(_shared_key(digest), payload, ex=SHARED_TTL)
    return info


def forget(digests) -> None:
    """Drop cached lookups for these key hashes in this process and in Redis."""
    digests = [d for d in digests if d]
    for digest in digests:
        _local.pop(digest, None)
    redis = shared_redis.sync_redis()
    if redis is not None and digests:
        redis.delete(*(_shared_key(d) for d in digests))


def clear_local() -> None:
    _local.clear()


local_caches.register(clear_local)
