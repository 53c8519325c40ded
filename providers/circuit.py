"""Circuit breaker per provider: closed -> open after `failure_threshold`
failures within a window -> half-open after `recovery_timeout`, letting
`half_open_max_calls` probes through -> closed on a probe's success, open
again on its failure.

State lives in Redis when configured (shared by every process; failures
counted by one Lua script) and in memory otherwise. Each process keeps a view
of it no older than VIEW_TTL, so a healthy provider costs no round trip.
A provider's state is forgotten `window` seconds after its last failure (the
Redis key's TTL, or an expiry in memory). A round of probes that never reports
back (the client left, the provider was at its own rate limit) does not hold
the circuit half-open for ever: after another `recovery_timeout` a new round
starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily

from core import local_caches, shared_redis
from providers import registry

VIEW_TTL = 1.0


@dataclass(frozen=True)
class CircuitConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    half_open_max_calls: int = 3

    @classmethod
    def from_settings(cls, data: dict | None) -> CircuitConfig:
        return cls(**{k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__})

    @property
    def window(self) -> int:
        # Failures older than this are forgotten, so sparse errors never open the circuit.
        return int(max(60, self.recovery_timeout * 2))


FAIL_SCRIPT = shared_redis.LuaScript("""
local failures = redis.call('HINCRBY', KEYS[1], 'f', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
if open_until > 0 or failures >= tonumber(ARGV[1]) then
  open_until = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'o', ARGV[2], 'p', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {failures, tostring(open_until)}
""")

# A half-open probe: 1 when it may go through. ARGV: max probes, now, recovery timeout.
PROBE_SCRIPT = shared_redis.LuaScript("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local probes = redis.call('HINCRBY', KEYS[1], 'p', 1)
if probes <= tonumber(ARGV[1]) then return 1 end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
if open_until > 0 and tonumber(ARGV[2]) >= open_until + tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'o', ARGV[2], 'p', 1)
  return 1
end
return 0
""")


class Circuits:
    def __init__(self) -> None:
        # name -> [failures, open_until epoch or 0, probes, expiry]; the expiry is
        # the view's (monotonic) with Redis, the state's own (epoch) without.
        self._view: dict[str, list] = {}

    @staticmethod
    def _key(name: str) -> str:
        return f"gw:cb:{name}"

    async def _state(self, name: str) -> list:
        view = self._view.get(name)
        redis = shared_redis.async_redis()
        if redis is None:
            if view is None or (view[3] and view[3] <= time.time()):
                view = self._view[name] = [0, 0.0, 0, 0.0]  # never failed, or forgotten
            return view
        if view is None or view[3] < time.monotonic():
            failures, open_until = await redis.hmget(self._key(name), "f", "o")
            view = [int(failures or 0), float(open_until or 0), 0, time.monotonic() + VIEW_TTL]
            self._view[name] = view
        return view

    async def allow(self, name: str, config: CircuitConfig) -> bool:
        state = await self._state(name)
        open_until = state[1]
        if not open_until:
            return True
        if time.time() < open_until:
            return False
        # Half-open: a few probes may go through, counted across processes.
        redis = shared_redis.async_redis()
        if redis is not None:
            now = time.time()
            args = [config.half_open_max_calls, now, config.recovery_timeout]
            return bool(await PROBE_SCRIPT(redis, [self._key(name)], args))
        state[2] += 1
        if state[2] <= config.half_open_max_calls:
            return True
        if time.time() >= open_until + config.recovery_timeout:
            state[1], state[2] = time.time(), 1  # the last round never reported back: a new one
            return True
        return False

    async def record_success(self, name: str) -> None:
        state = await self._state(name)
        if not state[0] and not state[1]:
            return
        state[:3] = [0, 0.0, 0]
        redis = shared_redis.async_redis()
        if redis is not None:
            await redis.delete(self._key(name))

    async def record_failure(self, name: str, config: CircuitConfig) -> None:
        state = await self._state(name)
        now = time.time()
        redis = shared_redis.async_redis()
        if redis is None:
            state[0] += 1
            if state[1] or state[0] >= config.failure_threshold:
                state[1], state[2] = now + config.recovery_timeout, 0
            state[3] = now + config.window  # as the Redis key's TTL
            return
        failures, open_until = await FAIL_SCRIPT(
            redis, [self._key(name)], [config.failure_threshold, now + config.recovery_timeout, config.window]
        )
        state[0], state[1] = int(failures), float(open_until)

    async def status(self, name: str) -> str:
        """healthy | degraded | unhealthy."""
        state = await self._state(name)
        if not state[0] and not state[1]:
            return "healthy"
        if state[1] and time.time() < state[1]:
            return "unhealthy"
        return "degraded"

    def state_code_sync(self, name: str) -> int:
        """0 closed, 1 half-open, 2 open (for metrics; reads Redis directly when shared)."""
        redis = shared_redis.sync_redis()
        if redis is None:
            view = self._view.get(name)
            open_until = view[1] if view else 0.0
        else:
            open_until = float(redis.hget(self._key(name), "o") or 0)
        if not open_until:
            return 0
        return 2 if time.time() < open_until else 1

    def reset_local(self) -> None:
        self._view.clear()


circuits = Circuits()
local_caches.register(circuits.reset_local)


class CircuitCollector:
    """Each provider's circuit state at scrape time (0 closed, 1 half-open, 2 open),
    for `GET /metrics/prometheus` (registered by the providers app)."""

    def collect(self):
        gauge = GaugeMetricFamily(
            "llm_gateway_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", labels=["provider"]
        )
        for name in registry.current_sync().upstreams:
            gauge.add_metric([name], circuits.state_code_sync(name))
        yield gauge
