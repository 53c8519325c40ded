from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts import channels
from alerts.models import AlertRule
from tests.alerts.receiver import Receiver


@pytest.fixture(autouse=True)
def _no_background_evaluation(settings, monkeypatch):
    """Rules are evaluated when a test says so: a server's periodic evaluator
    (started by any earlier test's first request) finds evaluation off."""
    settings.ALERT_EVALUATION_SECONDS = 0
    # Retries a few times faster than in production, with the same shape.
    monkeypatch.setattr(channels, "BACKOFF", 0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def slack_receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def make_rule(name: str = "errors", **fields) -> AlertRule:
    fields.setdefault("metric_path", "summary.error_rate")
    fields.setdefault("condition", ">")
    fields.setdefault("threshold", 0.5)
    fields.setdefault("channels", ["log"])
    rule = AlertRule(name=name, **fields)
    rule.full_clean()
    rule.save()
    return rule
