"""`manage.py evaluate_alerts`, as cron runs it: a real process on this run's database (and Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from alerts import evaluator
from alerts.models import Alert
from core import shared_redis
from tests.alerts.conftest import make_rule
from tests.usage.records import make_record
from usage.models import UsageRecord

ROOT = Path(__file__).resolve().parents[2]


def command_env(**extra: str) -> dict:
    """This test run's database (and Redis), as DaphneGateway passes them on."""
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH", "REDIS_URL")}
    if db["ENGINE"].endswith("sqlite3"):
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        auth = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
        env["DATABASE_URL"] = f"postgres://{auth}{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(LOG_LEVEL="WARNING", **extra)
    return env


def evaluate_alerts(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "evaluate_alerts", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def failing(transactional_db, factory, receiver):
    factory.make_provider("primary")
    rule = make_rule(
        "primary-errors", metric_path="providers.primary.error_rate", channels=["webhook"], webhook_url=receiver.url
    )
    UsageRecord.objects.bulk_create([make_record(ago=timedelta(minutes=1), provider="primary", status=502)])
    return rule


def test_it_fires_delivers_and_exits_0(failing, receiver):
    done = evaluate_alerts(env=command_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Alerts: 1 rule(s) evaluated: 1 fired, 0 resolved, 0 in cooldown."
    assert Alert.objects.get().rule_name == "primary-errors"
    # Delivered before the process ended.
    assert [body["event"] for body in receiver.bodies] == ["fired"]
    again = evaluate_alerts(env=command_env())
    assert "0 fired" in again.stdout and Alert.objects.count() == 1


def test_it_skips_while_another_evaluator_runs(failing):
    lock = evaluator.EvaluationLock()
    assert lock.acquire()
    try:
        done = evaluate_alerts(env=command_env())
    finally:
        lock.release()
    assert done.returncode == 0, done.stderr
    if shared_redis.enabled():
        # With Redis the lock holds across processes.
        assert done.stdout.strip() == "Skipped: another evaluator is running."
        assert not Alert.objects.exists()
    else:
        # Without Redis each process has its own: cron's run is not held back.
        assert "1 fired" in done.stdout


def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path):
    for args, env in (
        (["--bogus"], command_env()),
        # A database without the tables (never migrated).
        ([], {**command_env(SQLITE_PATH=str(tmp_path / "empty.sqlite3")), "DATABASE_URL": "", "REDIS_URL": ""}),
    ):
        done = evaluate_alerts(*args, env=env)
        assert done.returncode != 0, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert "alert evaluation failed: no such table" in done.stderr
