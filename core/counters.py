"""Counters every process shares: check-and-reserve over many at once, settle once.

The engine under both quota admission (`usage.limits`) and a provider's own
RPM/TPM (`providers.limits`). A `Check` is one counter with a limit: a request
is refused when the counter has already reached its limit, otherwise `add` is
reserved on it. `reserve()` does that for a list of checks in one atomic step,
on all of them or on none: one Lua script with Redis, shared by every process;
without Redis, a synchronous method on this process's `MemoryCounters`
(nothing else runs on the event loop meanwhile). `settle()` applies the final
adjustments once per marker and, with Redis, may append a record to a list in
the same round trip.

A check with `must_exist` (a quota rebuilt from records) is never taken as 0
when its counter is missing: `reserve()` reports it (status -1) so the caller
can seed it (`missing()`, `seed()`) and try again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core import local_caches, shared_redis

SETTLED_TTL = 24 * 3600

ADMIT_SCRIPT = shared_redis.LuaScript("""
local values = {}
for i = 1, #KEYS do
  local base = (i - 1) * 4
  local value = redis.call('GET', KEYS[i])
  if not value and ARGV[base + 4] == '1' then return {-1, i} end
  value = tonumber(value or '0')
  if value >= tonumber(ARGV[base + 1]) then return {0, i, value} end
end
for i = 1, #KEYS do
  local base = (i - 1) * 4
  values[i] = redis.call('INCRBY', KEYS[i], ARGV[base + 2])
  local ttl = tonumber(ARGV[base + 3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return {1, 0, unpack(values)}
""")

SETTLE_SCRIPT = shared_redis.LuaScript("""
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 3, #KEYS do
  local delta = tonumber(ARGV[i])
  if delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], delta) end
end
if ARGV[2] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return 1
""")


@dataclass(slots=True)
class Check:
    """One counter: refuse when it has reached `limit`, else add `add`."""

    key: str
    kind: str  # what it counts, e.g. tokens | usd | rpm | tpm | parallel
    level: str  # whose it is, e.g. key | user | tenant | global | provider
    limit: int
    add: int
    ttl: int  # seconds; 0 = no expiry
    must_exist: bool = False  # missing is not 0: the caller rebuilds it first


class MemoryCounters:
    """Counters of a single process (no Redis). Each operation is synchronous,
    so it is atomic on the event loop."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at or 0)
        self.settled: dict[str, float] = {}

    def _get(self, key: str, now: float) -> int | None:
        entry = self.values.get(key)
        if entry is None or (entry[1] and entry[1] <= now):
            return None
        return entry[0]

    def missing(self, checks: list[Check]) -> list[Check]:
        now = time.time()
        return [c for c in checks if c.must_exist and self._get(c.key, now) is None]

    def seed(self, check: Check, value: int) -> None:
        if self._get(check.key, time.time()) is None:
            self.values[check.key] = (value, time.time() + check.ttl if check.ttl else 0)

    def admit(self, checks: list[Check]) -> tuple[int, int, list[int]]:
        now = time.time()
        for index, check in enumerate(checks):
            value = self._get(check.key, now)
            if value is None and check.must_exist:
                return -1, index, []
            if (value or 0) >= check.limit:
                return 0, index, []
        values = []
        for check in checks:
            value = (self._get(check.key, now) or 0) + check.add
            self.values[check.key] = (value, now + check.ttl if check.ttl else 0)
            values.append(value)
        self._prune(now)
        return 1, 0, values

    def settle(self, marker: str, adjustments: list[tuple[str, int]]) -> bool:
        now = time.time()
        if self.settled.get(marker, 0) > now:
            return False
        self.settled[marker] = now + SETTLED_TTL
        for key, delta in adjustments:
            entry = self.values.get(key)
            if entry is not None and delta:
                self.values[key] = (entry[0] + delta, entry[1])
        return True

    def _prune(self, now: float) -> None:
        # Bounded memory: rate windows and old periods expire; sweep now and then.
        if len(self.values) > 50_000:
            self.values = {k: v for k, v in self.values.items() if not v[1] or v[1] > now}
        if len(self.settled) > 50_000:
            self.settled = {k: v for k, v in self.settled.items() if v > now}

    def reset(self) -> None:
        self.values.clear()
        self.settled.clear()


memory = MemoryCounters()
local_caches.register(memory.reset)


async def reserve(checks: list[Check]) -> tuple[int, int, list[int]]:
    """One atomic check-and-reserve over `checks`: (1, 0, new values) when all
    pass; (0, i, _) when check i is at its limit; (-1, i, _) when check i must
    exist and its counter is missing."""
    if not checks:
        return 1, 0, []
    redis = shared_redis.async_redis()
    if redis is None:
        return memory.admit(checks)
    args = []
    for check in checks:
        args += [check.limit, check.add, check.ttl, 1 if check.must_exist else 0]
    result = await ADMIT_SCRIPT(redis, [c.key for c in checks], args)
    return int(result[0]), int(result[1]) - 1, [int(v) for v in result[2:]]


async def missing(checks: list[Check]) -> list[Check]:
    """The checks that must exist and whose counter is missing now."""
    redis = shared_redis.async_redis()
    if redis is None:
        return memory.missing(checks)
    required = [c for c in checks if c.must_exist]
    if not required:
        return []
    values = await redis.mget([c.key for c in required])
    return [c for c, value in zip(required, values, strict=True) if value is None]


async def seed(check: Check, value: int) -> None:
    """Set a missing counter to `value` (rebuilt by the caller); one already there wins."""
    redis = shared_redis.async_redis()
    if redis is None:
        memory.seed(check, value)
    else:
        await redis.set(check.key, value, nx=True, ex=check.ttl or None)


async def settle(marker: str, adjustments: list[tuple[str, int]], queue: str = "", record: bytes = b"") -> bool:
    """Add each (counter, delta) once per `marker` (False when already done);
    with Redis, also append `record` to the list `queue` in the same step."""
    redis = shared_redis.async_redis()
    if redis is None:
        return memory.settle(marker, adjustments)
    keys = [marker, queue, *(key for key, _ in adjustments)]
    done = await SETTLE_SCRIPT(redis, keys, [SETTLED_TTL, record, *(d for _, d in adjustments)])
    return bool(done)
