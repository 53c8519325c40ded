"""alerts.evaluator: rules fire, resolve and respect their cooldown; one evaluator at a time."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from alerts import evaluator
from alerts.metrics import Metrics
from alerts.models import Alert, AlertRule, AlertStatus
from core import shared_redis
from tests.alerts.conftest import make_rule
from tests.usage.records import make_record
from usage import stats
from usage.models import UsageRecord

MIN = timedelta(minutes=1)


def traffic(failed: int, succeeded: int = 0, provider: str = "primary") -> None:
    UsageRecord.objects.bulk_create(
        [make_record(ago=MIN, provider=provider, status=502) for _ in range(failed)]
        + [make_record(ago=MIN, provider=provider, status=200) for _ in range(succeeded)]
    )


@pytest.fixture
def rule(db, factory) -> AlertRule:
    factory.make_provider("primary")
    return make_rule("primary-errors", metric_path="providers.primary.error_rate", threshold=0.5, severity="error")


def test_a_rule_whose_condition_holds_fires_one_alert(rule):
    traffic(failed=3, succeeded=1)
    outcome = evaluator.evaluate()
    assert len(outcome.fired) == 1
    alert = Alert.objects.get()
    assert (alert.rule_name, alert.status, alert.severity, alert.value) == ("primary-errors", "active", "error", 0.75)
    assert alert.message == "primary-errors: providers.primary.error_rate is 0.75 (> 0.5)"
    rule.refresh_from_db()
    assert rule.last_fired_at is not None


def test_evaluating_again_while_it_holds_changes_nothing(rule):
    traffic(failed=3)
    evaluator.evaluate()
    again = evaluator.evaluate()
    assert again.fired == [] and again.resolved == []
    assert Alert.objects.count() == 1


def test_the_open_alert_resolves_when_the_condition_stops_holding(rule):
    traffic(failed=3)
    evaluator.evaluate()
    traffic(failed=0, succeeded=10)
    outcome = evaluator.evaluate()
    assert len(outcome.resolved) == 1
    alert = Alert.objects.get()
    assert alert.status == AlertStatus.RESOLVED and alert.resolved_at is not None


def test_an_acknowledged_alert_stays_until_resolved(rule):
    traffic(failed=3)
    evaluator.evaluate()
    assert Alert.objects.get().acknowledge(by="ops")
    assert evaluator.evaluate().fired == []
    traffic(failed=0, succeeded=10)
    evaluator.evaluate()
    alert = Alert.objects.get()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.RESOLVED, "ops")


def test_no_new_alert_inside_the_cooldown(rule):
    traffic(failed=3)
    evaluator.evaluate()
    traffic(failed=0, succeeded=10)
    evaluator.evaluate()  # resolved
    traffic(failed=20)
    outcome = evaluator.evaluate()
    assert outcome.fired == [] and outcome.cooling == 1
    assert Alert.objects.count() == 1
    # Once the cooldown has passed, the same condition fires again.
    AlertRule.objects.filter(pk=rule.pk).update(last_fired_at=timezone.now() - timedelta(minutes=16))
    assert len(evaluator.evaluate().fired) == 1
    assert Alert.objects.filter(status=AlertStatus.ACTIVE).count() == 1


def test_a_stale_read_of_the_rule_fires_nothing(rule):
    """Two evaluators that read the rule at the same moment: one alert."""
    traffic(failed=3)
    stale = AlertRule.objects.get(pk=rule.pk)
    assert rule.fire(1.0) is not None
    assert stale.fire(1.0) is None
    assert Alert.objects.count() == 1


def test_a_rule_without_a_value_never_fires(db, world):
    # acme has no budget: the ratio has no value.
    make_rule("acme-budget", metric_path="tenants.acme.budget_used_ratio", condition=">=", threshold=0)
    assert evaluator.evaluate().fired == []


def test_disabled_rules_are_not_evaluated_and_their_alerts_resolve(rule):
    traffic(failed=3)
    evaluator.evaluate()
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    outcome = evaluator.evaluate()
    assert outcome.evaluated == 0
    assert Alert.objects.get().status == AlertStatus.RESOLVED


def test_a_failing_metric_does_not_stop_the_other_rules(rule, monkeypatch, caplog):
    make_rule("summary-errors", metric_path="summary.error_rate", threshold=0.5)
    traffic(failed=3)
    real = Metrics.value

    def value(self, path):
        if path.startswith("providers."):
            raise RuntimeError("boom")
        return real(self, path)

    monkeypatch.setattr(Metrics, "value", value)
    outcome = evaluator.evaluate()
    assert outcome.failed == 1 and [a.rule_name for a in outcome.fired] == ["summary-errors"]
    assert "could not read providers.primary.error_rate" in caplog.text


def test_recent_traffic_is_read_once_for_all_rules(rule, monkeypatch):
    for n in range(3):
        make_rule(f"summary-{n}", metric_path="summary.error_rate", threshold=n / 10)
    traffic(failed=3)
    reads = []
    real = stats.recent
    monkeypatch.setattr(stats, "recent", lambda minutes: reads.append(minutes) or real(minutes))
    assert len(evaluator.evaluate().fired) == 4
    assert len(reads) == 1


@pytest.mark.django_db(transaction=True)
def test_only_one_evaluator_runs_at_a_time(factory, monkeypatch):
    """Two concurrent runs: one evaluates, the other skips (Redis lock across
    processes with REDIS_URL, the process lock without)."""
    factory.make_provider("primary")
    make_rule("primary-errors", metric_path="providers.primary.error_rate")
    traffic(failed=3)
    inside, release = threading.Event(), threading.Event()
    real = evaluator.evaluate

    def slow_evaluate():
        inside.set()
        assert release.wait(10)
        return real()

    monkeypatch.setattr(evaluator, "evaluate", slow_evaluate)
    results = {}

    def first_run():
        try:
            results["first"] = evaluator.run()
        finally:
            connections.close_all()  # this thread's own connection

    first = threading.Thread(target=first_run)
    first.start()
    assert inside.wait(10)
    results["second"] = evaluator.run()  # while the first holds the lock
    release.set()
    first.join(10)
    assert results["second"] is None
    assert len(results["first"].fired) == 1
    assert evaluator.run() is not None  # the lock is free again


@pytest.mark.django_db
def test_the_lock_is_released_only_by_its_holder():
    lock = evaluator.EvaluationLock()
    assert lock.acquire()
    redis = shared_redis.sync_redis()
    if redis is None:
        # One process: a second evaluator of this process waits its turn.
        assert not evaluator.EvaluationLock().acquire()
        lock.release()
        other = evaluator.EvaluationLock()
        assert other.acquire()
        other.release()
        return
    assert 0 < redis.ttl(evaluator.LOCK_KEY) <= evaluator.LOCK_SECONDS
    # The lock expired and another process took it: releasing ours leaves theirs.
    redis.set(evaluator.LOCK_KEY, "another-process")
    lock.release()
    assert redis.get(evaluator.LOCK_KEY) == b"another-process"
    redis.delete(evaluator.LOCK_KEY)


@pytest.mark.django_db
def test_a_periodic_run_skips_when_a_run_was_just_done(rule):
    traffic(failed=3)
    assert evaluator.run(min_interval=60) is not None
    assert evaluator.run(min_interval=60) is None
    assert evaluator.run() is not None  # cron's run does not wait for the interval
