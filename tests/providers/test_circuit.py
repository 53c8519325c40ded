"""The circuit breaker on its own (providers/circuit.py): closed -> open -> half-open ->
closed or open again, its status and metric codes, its config, and (with REDIS_URL)
state shared by every process through Redis. Time is frozen with time-machine and
moved on by hand, so no test waits for a recovery timeout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core import shared_redis
from providers.circuit import FAIL_SCRIPT, CircuitConfig, Circuits, circuits

NAME = "primary"
CONFIG = CircuitConfig(failure_threshold=3, recovery_timeout=5.0, half_open_max_calls=2)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """Wall-clock time for this process (time-machine) and for Redis, which keeps its own:
    a key whose TTL would have run out by now is expired as Redis would have done."""

    def __init__(self, time_machine) -> None:
        self.time_machine = time_machine
        time_machine.move_to(START, tick=False)

    def advance(self, seconds: float) -> None:
        self.time_machine.shift(seconds)
        redis = shared_redis.sync_redis()
        if redis is None:
            return
        for key in redis.scan_iter(match="gw:cb:*"):
            left = redis.pttl(key)
            if 0 <= left <= seconds * 1000:
                redis.delete(key)
            elif left > 0:
                redis.pexpire(key, left - int(seconds * 1000))


@pytest.fixture
def clock(time_machine) -> Clock:
    return Clock(time_machine)


async def fail(times: int, name: str = NAME, config: CircuitConfig = CONFIG, breaker: Circuits = circuits) -> None:
    for _ in range(times):
        await breaker.record_failure(name, config)


async def opened(name: str = NAME) -> None:
    await fail(CONFIG.failure_threshold, name)
    assert not await circuits.allow(name, CONFIG)


async def half_open(clock: Clock) -> None:
    await opened()
    clock.advance(CONFIG.recovery_timeout + 0.1)


# --- closed -> open ------------------------------------------------------------------


async def test_new_circuit_is_closed_and_healthy(clock):
    assert await circuits.allow(NAME, CONFIG)
    assert await circuits.status(NAME) == "healthy"
    assert circuits.state_code_sync(NAME) == 0


async def test_failures_below_the_threshold_keep_it_closed_but_degraded(clock):
    await fail(CONFIG.failure_threshold - 1)
    assert await circuits.allow(NAME, CONFIG)
    assert await circuits.status(NAME) == "degraded"
    assert circuits.state_code_sync(NAME) == 0


async def test_circuit_opens_after_failure_threshold_failures(clock):
    await fail(CONFIG.failure_threshold)
    assert not await circuits.allow(NAME, CONFIG)
    assert await circuits.status(NAME) == "unhealthy"
    assert circuits.state_code_sync(NAME) == 2


async def test_success_while_closed_resets_the_failure_count(clock):
    await fail(CONFIG.failure_threshold - 1)
    await circuits.record_success(NAME)
    assert await circuits.status(NAME) == "healthy"
    await fail(CONFIG.failure_threshold - 1)
    assert await circuits.allow(NAME, CONFIG)


async def test_failures_older_than_the_window_are_forgotten(clock):
    await fail(CONFIG.failure_threshold - 1)
    clock.advance(CONFIG.window + 1)
    await fail(1)
    assert await circuits.allow(NAME, CONFIG)


async def test_circuits_are_per_provider(clock):
    await opened("primary")
    assert await circuits.allow("backup", CONFIG)
    assert await circuits.status("backup") == "healthy"


# --- open -> half-open ---------------------------------------------------------------


async def test_open_circuit_refuses_until_the_recovery_timeout(clock):
    await opened()
    clock.advance(CONFIG.recovery_timeout - 0.1)
    assert not await circuits.allow(NAME, CONFIG)
    clock.advance(0.2)
    assert await circuits.allow(NAME, CONFIG)


async def test_half_open_lets_half_open_max_calls_probes_through_and_no_more(clock):
    await half_open(clock)
    allowed = [await circuits.allow(NAME, CONFIG) for _ in range(CONFIG.half_open_max_calls + 2)]
    assert allowed == [True] * CONFIG.half_open_max_calls + [False, False]


async def test_half_open_probes_that_never_report_back_do_not_shut_the_provider_out_for_good(clock):
    await half_open(clock)
    for _ in range(CONFIG.half_open_max_calls):
        # Let through, then neither success nor failure recorded: a cancelled call (the client
        # went away), or the router finding the provider at its own RPM limit after allow().
        assert await circuits.allow(NAME, CONFIG)
    clock.advance(CONFIG.window + CONFIG.recovery_timeout)
    assert await circuits.allow(NAME, CONFIG)


async def test_half_open_circuit_is_degraded_with_state_code_1(clock):
    await half_open(clock)
    assert await circuits.status(NAME) == "degraded"
    assert circuits.state_code_sync(NAME) == 1


# --- half-open -> closed or open -----------------------------------------------------


async def test_probe_success_closes_the_circuit(clock):
    await half_open(clock)
    assert await circuits.allow(NAME, CONFIG)
    await circuits.record_success(NAME)
    assert await circuits.status(NAME) == "healthy"
    assert circuits.state_code_sync(NAME) == 0
    assert all([await circuits.allow(NAME, CONFIG) for _ in range(CONFIG.half_open_max_calls + 2)])


async def test_probe_failure_reopens_the_circuit_for_another_recovery_timeout(clock):
    await half_open(clock)
    assert await circuits.allow(NAME, CONFIG)
    await circuits.record_failure(NAME, CONFIG)  # one failure is enough while half-open
    assert not await circuits.allow(NAME, CONFIG)
    assert await circuits.status(NAME) == "unhealthy"
    assert circuits.state_code_sync(NAME) == 2
    clock.advance(CONFIG.recovery_timeout - 0.1)
    assert not await circuits.allow(NAME, CONFIG)
    clock.advance(0.2)
    assert await circuits.allow(NAME, CONFIG)


async def test_reopened_circuit_gets_a_fresh_probe_budget(clock):
    await half_open(clock)
    assert await circuits.allow(NAME, CONFIG)
    await circuits.record_failure(NAME, CONFIG)
    clock.advance(CONFIG.recovery_timeout + 0.1)
    allowed = [await circuits.allow(NAME, CONFIG) for _ in range(CONFIG.half_open_max_calls + 1)]
    assert allowed == [True] * CONFIG.half_open_max_calls + [False]


# --- shared by every process (with Redis) --------------------------------------------
# Without REDIS_URL there is one process and the state is its memory; with it, another
# process (its own Circuits, or this one with its local view cleared) sees the same state.


async def test_open_circuit_is_seen_by_another_process_when_shared(clock):
    await opened()
    circuits.reset_local()  # as a process that never saw the failures
    if shared_redis.enabled():
        assert not await circuits.allow(NAME, CONFIG)
        assert await circuits.status(NAME) == "unhealthy"
        assert circuits.state_code_sync(NAME) == 2
    else:
        assert await circuits.allow(NAME, CONFIG)
        assert await circuits.status(NAME) == "healthy"


async def test_failures_of_every_process_count_towards_one_threshold_when_shared(clock):
    other = Circuits()
    await fail(CONFIG.failure_threshold - 1)
    await fail(1, breaker=other)
    assert await other.allow(NAME, CONFIG) is not shared_redis.enabled()


async def test_half_open_probes_are_counted_across_processes_when_shared(clock):
    await half_open(clock)
    other = Circuits()
    mine = [await circuits.allow(NAME, CONFIG) for _ in range(CONFIG.half_open_max_calls)]
    assert mine == [True] * CONFIG.half_open_max_calls
    assert await other.allow(NAME, CONFIG) is not shared_redis.enabled()


async def test_a_probe_success_in_another_process_closes_it_for_all_when_shared(clock):
    await half_open(clock)
    other = Circuits()
    assert await other.allow(NAME, CONFIG)
    await other.record_success(NAME)
    # The metric reads Redis itself; without Redis this process's circuit is still half-open.
    assert circuits.state_code_sync(NAME) == (0 if shared_redis.enabled() else 1)


async def test_fail_script_counts_opens_at_the_threshold_and_keeps_the_window(clock):
    redis = shared_redis.async_redis()
    if redis is None:  # no Redis, no script: record_failure takes the same step in memory
        await fail(CONFIG.failure_threshold)
        assert circuits.state_code_sync(NAME) == 2
        return
    key, until = f"gw:cb:{NAME}", START.timestamp() + CONFIG.recovery_timeout
    args = [CONFIG.failure_threshold, until, CONFIG.window]
    answers = [await FAIL_SCRIPT(redis, [key], args) for _ in range(CONFIG.failure_threshold)]
    assert [(int(f), float(o)) for f, o in answers] == [(1, 0.0), (2, 0.0), (3, until)]
    assert 0 < shared_redis.sync_redis().ttl(key) <= CONFIG.window
    assert circuits.state_code_sync(NAME) == 2


# --- config --------------------------------------------------------------------------


def test_config_from_settings_ignores_unknown_keys():
    config = CircuitConfig.from_settings({"failure_threshold": 2, "recovery_timeout": 10, "enabled": True})
    assert config == CircuitConfig(failure_threshold=2, recovery_timeout=10, half_open_max_calls=3)


def test_config_from_no_settings_is_the_default():
    assert CircuitConfig.from_settings(None) == CircuitConfig() == CircuitConfig.from_settings({})


@pytest.mark.parametrize("recovery_timeout, window", [(1, 60), (30, 60), (45, 90), (100.5, 201)])
def test_window_is_max_of_60_and_twice_the_recovery_timeout(recovery_timeout, window):
    assert CircuitConfig(recovery_timeout=recovery_timeout).window == window
