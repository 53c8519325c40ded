"""An error-rate alert from real traffic: requests through the live gateway to a
failing mock upstream, the rule made and the alert acknowledged over HTTP,
deliveries to real receivers and by email, the cooldown, the resolution."""

from __future__ import annotations

import gc
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from alerts import channels, evaluator
from alerts.models import Alert, AlertRule, AlertStatus
from tests.conftest import ADMIN_KEY
from tests.live import flush_usage
from tests.mock_upstream import status

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(autouse=True)
def _collect_request_connections():
    yield
    # Each request the live server answers with Django leaves its thread's
    # database connection to the garbage collector (a reference cycle); on
    # PostgreSQL one still open keeps the test database from being dropped.
    gc.collect()


def chats(gateway, raw_key: str, count: int, expect: int) -> None:
    headers = {"Authorization": f"Bearer {raw_key}"}
    for _ in range(count):
        response = httpx.post(gateway.v1 + "/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == expect, response.text
    flush_usage()


def evaluate() -> evaluator.Outcome:
    outcome = evaluator.run()
    assert outcome is not None
    channels.wait(outcome.deliveries)
    return outcome


def test_an_error_rate_alert_fires_is_acknowledged_and_resolves(
    live_gateway, proxy_world, upstream, mock_upstream, receiver, slack_receiver, mailoutbox
):
    rule = {
        "name": "primary-errors",
        "description": "The primary provider fails",
        "metric_path": "providers.primary.error_rate",
        "condition": ">",
        "threshold": 0.5,
        "severity": "critical",
        "cooldown_minutes": 30,
        "channels": ["log", "webhook", "slack", "email"],
        "webhook_url": receiver.url,
        "slack_webhook_url": slack_receiver.url,
        "email_to": ["oncall@example.com"],
    }
    created = httpx.post(live_gateway.v1 + "/rules", json=rule, headers=ADMIN)
    assert created.status_code == 201, created.text
    member = proxy_world.member_raw

    # The upstream fails: 4 of 4 requests through the gateway are 502.
    mock_upstream.set_default(status(500))
    chats(live_gateway, member, 4, expect=502)
    fired = evaluate().fired
    assert len(fired) == 1
    [webhook] = receiver.bodies
    assert webhook["event"] == "fired" and webhook["value"] == 1.0
    alert = webhook["alert"]
    assert (alert["rule"], alert["severity"], alert["status"]) == ("primary-errors", "critical", "active")
    assert (alert["metric_path"], alert["condition"], alert["threshold"], alert["value"]) == (
        "providers.primary.error_rate", ">", 0.5, 1.0,
    )  # fmt: skip
    [slack] = slack_receiver.bodies
    assert list(slack) == ["text"] and slack["text"].startswith("[CRITICAL] Alert fired: primary-errors")
    [mail] = mailoutbox
    assert mail.to == ["oncall@example.com"] and "primary-errors" in mail.subject

    # Still failing: the open alert is the only one, and nothing is sent again.
    assert evaluate().fired == []
    assert len(receiver.bodies) == 1

    # An operator acknowledges it over the API.
    listed = httpx.get(live_gateway.v1 + "/alerts?status=active&severity=critical", headers=ADMIN).json()
    assert [a["id"] for a in listed["results"]] == [alert["id"]]
    acked = httpx.post(live_gateway.v1 + f"/alerts/{alert['id']}/acknowledge", headers=ADMIN)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "gateway-admin")

    # The upstream recovers: 5 successes bring the error rate to 4/9, under 0.5.
    mock_upstream.set_default(None)
    chats(live_gateway, member, 5, expect=200)
    resolved = evaluate().resolved
    assert [a.pk for a in resolved] == [alert["id"]]
    assert Alert.objects.get().status == AlertStatus.RESOLVED
    assert receiver.bodies[-1]["event"] == "resolved" and receiver.bodies[-1]["alert"]["status"] == "resolved"
    assert "resolved" in slack_receiver.bodies[-1]["text"].lower()
    assert len(mailoutbox) == 2 and "resolved" in mailoutbox[1].subject.lower()

    # It fails again within the cooldown (6 of 11): no second alert, nothing sent.
    mock_upstream.set_default(status(500))
    chats(live_gateway, member, 2, expect=502)
    outcome = evaluate()
    assert outcome.fired == [] and outcome.cooling == 1
    assert Alert.objects.count() == 1 and len(receiver.bodies) == 2

    # Once the cooldown has passed, it fires again.
    AlertRule.objects.filter(name="primary-errors").update(last_fired_at=timezone.now() - timedelta(minutes=31))
    assert len(evaluate().fired) == 1
    assert Alert.objects.filter(status=AlertStatus.ACTIVE).count() == 1
    assert receiver.bodies[-1]["event"] == "fired"
