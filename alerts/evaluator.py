"""Evaluating the alert rules: fire, resolve, notify.

`evaluate()` is one pass over every enabled rule: a rule whose condition holds
and has no open alert fires one (unless in its cooldown) and notifies its
channels; an open alert whose condition no longer holds is resolved, and that
is notified too. It is idempotent, and safe when two passes overlap: firing is
a compare-and-set on the rule's last_fired_at, resolving a conditional UPDATE.

`run()` is what callers use: the same pass under a lock, so that one evaluator
works at a time — across processes with Redis (a key set with a random token
and an expiry longer than any run, deleted by a compare-and-delete script so a
run never releases a lock that expired and was taken by another), else within
this process. A caller that finds the lock held skips its turn.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from alerts import channels
from alerts.metrics import Metrics
from alerts.models import OPEN_STATUSES, Alert, AlertRule
from core import local_caches, shared_redis

logger = logging.getLogger("gateway.alerts")

LOCK_KEY = "gw:alerts:evaluate-lock"
LAST_RUN_KEY = "gw:alerts:last-run"
# A run reads one window of usage and a few rows per rule: seconds at most. The
# lock outlives it by far, and still frees itself if its holder dies.
LOCK_SECONDS = 300
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_process_lock = threading.Lock()
_last_run: list[float] = []  # without Redis: when this process last finished a run (monotonic)
local_caches.register(_last_run.clear)


@dataclass
class Outcome:
    evaluated: int = 0
    fired: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    cooling: int = 0  # rules whose condition holds, inside their cooldown
    failed: int = 0  # rules whose metric could not be read (logged)
    deliveries: list[Future] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"{self.evaluated} rule(s) evaluated: {len(self.fired)} fired, {len(self.resolved)} resolved, "
            f"{self.cooling} in cooldown"
        )
        return text + (f", {self.failed} failed" if self.failed else "")


def evaluate(metrics: Metrics | None = None) -> Outcome:
    """One pass over every enabled rule (the caller holds the lock, see run())."""
    metrics = metrics or Metrics()
    now = timezone.now()
    outcome = Outcome()
    rules = list(AlertRule.objects.filter(enabled=True).select_related("tenant"))
    open_alerts = {
        alert.rule_id: alert
        for alert in Alert.objects.filter(rule__in=rules, status__in=OPEN_STATUSES).select_related("tenant")
    }
    for rule in rules:
        outcome.evaluated += 1
        try:
            value = metrics.value(rule.metric_path)
        except Exception:
            logger.exception("Alert rule %s: could not read %s", rule.name, rule.metric_path)
            outcome.failed += 1
            continue
        # No value (a limit not set, a tenant gone) is a condition that does not hold.
        holds = value is not None and rule.holds(value)
        current = open_alerts.get(rule.pk)
        if holds and current is None:
            alert = rule.fire(value, now)
            if alert is None:
                outcome.cooling += 1
                continue
            outcome.fired.append(alert)
            outcome.deliveries += channels.notify(rule, alert, channels.FIRED, value)
        elif not holds and current is not None and current.resolve(now):
            outcome.resolved.append(current)
            outcome.deliveries += channels.notify(rule, current, channels.RESOLVED, value)
    # Open alerts of rules disabled or deleted since: nothing will resolve them
    # otherwise. Quietly: their rule was turned off on purpose.
    Alert.objects.filter(Q(rule__isnull=True) | Q(rule__enabled=False)).resolve(now)
    return outcome


class EvaluationLock:
    """One evaluator at a time: across processes with Redis, else in this process."""

    def __init__(self) -> None:
        self.redis = shared_redis.sync_redis()
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        if self.redis is None:
            return _process_lock.acquire(blocking=False)
        return bool(self.redis.set(LOCK_KEY, self.token, nx=True, ex=LOCK_SECONDS))

    def release(self) -> None:
        if self.redis is None:
            _process_lock.release()
        else:
            self.redis.eval(RELEASE, 1, LOCK_KEY, self.token)


def _seconds_since_last_run() -> float | None:
    redis = shared_redis.sync_redis()
    if redis is None:
        return time.monotonic() - _last_run[-1] if _last_run else None
    raw = redis.get(LAST_RUN_KEY)
    return time.time() - float(raw) if raw is not None else None


def _mark_run() -> None:
    redis = shared_redis.sync_redis()
    if redis is None:
        _last_run[:] = [time.monotonic()]
    else:
        redis.set(LAST_RUN_KEY, repr(time.time()), ex=LOCK_SECONDS * 12)


def run(min_interval: float | None = None) -> Outcome | None:
    """Evaluate under the lock; None when skipped (another evaluator holds the
    lock, or, with `min_interval`, some process ran less than that long ago).

    `min_interval` is for the servers' periodic task: each process wakes every
    interval, and the first to wake after the interval has passed does the
    run, so N workers still evaluate about once per interval, not N times. A
    tenth of it is slack for timers that fire a little early.
    """
    lock = EvaluationLock()
    if not lock.acquire():
        return None
    try:
        if min_interval is not None:
            since = _seconds_since_last_run()
            if since is not None and since < min_interval * 0.9:
                return None
        outcome = evaluate()
        _mark_run()
        return outcome
    finally:
        lock.release()
