"""alerts.channels: deliveries to real receivers, bounded retries, failures contained."""

from __future__ import annotations

import socket
import time

import pytest

from alerts import channels
from alerts.models import Alert, AlertRule
from tests.alerts.conftest import make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def fired(db, receiver, slack_receiver) -> tuple[AlertRule, Alert]:
    rule = make_rule(
        "budget",
        severity="critical",
        channels=["log", "webhook", "slack", "email"],
        webhook_url=receiver.url,
        slack_webhook_url=slack_receiver.url,
        email_to=["ops@example.com", "oncall@example.com"],
    )
    return rule, rule.fire(0.9)


def test_a_fired_alert_goes_to_every_channel(fired, receiver, slack_receiver, mailoutbox, caplog):
    rule, alert = fired
    channels.wait(channels.notify(rule, alert, channels.FIRED, 0.9))
    [body] = receiver.bodies
    assert body["event"] == "fired" and body["value"] == 0.9
    assert body["alert"]["id"] == alert.pk and body["alert"]["rule"] == "budget"
    assert (body["alert"]["severity"], body["alert"]["status"]) == ("critical", "active")
    assert body["alert"]["metric_path"] == "summary.error_rate" and body["alert"]["threshold"] == 0.5
    assert receiver.headers[0]["Content-Type"] == "application/json"
    [slack] = slack_receiver.bodies
    assert list(slack) == ["text"] and "[CRITICAL] Alert fired: budget" in slack["text"]
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com", "oncall@example.com"] and "Alert fired: budget" in mail.subject
    assert "Alert fired: budget: summary.error_rate is 0.9 (> 0.5)" in caplog.text


def test_a_resolved_alert_is_notified_as_resolved(fired, receiver, slack_receiver, mailoutbox):
    rule, alert = fired
    alert.resolve()
    channels.wait(channels.notify(rule, alert, channels.RESOLVED, 0.1))
    [body] = receiver.bodies
    assert body["event"] == "resolved" and body["alert"]["status"] == "resolved" and body["value"] == 0.1
    assert "resolved" in slack_receiver.bodies[0]["text"].lower()
    assert "resolved" in mailoutbox[0].subject.lower()


def test_the_webhook_retries_a_500_then_succeeds(fired, receiver):
    rule, alert = fired
    receiver.answer(500)
    notice = channels.notice(rule, alert, channels.FIRED, 0.9)
    assert channels.deliver("webhook", notice) is True
    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]


def test_the_webhook_gives_up_after_its_attempts_without_raising(fired, receiver, caplog):
    rule, alert = fired
    receiver.answer(*[503] * 10)
    notice = channels.notice(rule, alert, channels.FIRED, 0.9)
    assert channels.deliver("webhook", notice) is False
    assert len(receiver.bodies) == channels.ATTEMPTS
    assert f"failed after {channels.ATTEMPTS} attempts: HTTP 503" in caplog.text


def test_a_4xx_is_not_retried(fired, receiver, caplog):
    rule, alert = fired
    receiver.answer(404)
    assert channels.deliver("webhook", channels.notice(rule, alert, channels.FIRED, 0.9)) is False
    assert len(receiver.bodies) == 1 and "refused with HTTP 404" in caplog.text


def test_a_receiver_that_is_down_is_retried_then_given_up(fired, caplog):
    rule, alert = fired
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    AlertRule.objects.filter(pk=rule.pk).update(webhook_url=url)
    rule.refresh_from_db()
    assert channels.deliver("webhook", channels.notice(rule, alert, channels.FIRED, 0.9)) is False
    assert f"failed after {channels.ATTEMPTS} attempts: cannot connect" in caplog.text
    assert "/hook" not in caplog.text  # the URL is logged by host only


def test_a_failing_channel_is_logged_and_the_others_still_deliver(fired, receiver, settings, caplog):
    rule, alert = fired
    settings.EMAIL_BACKEND = "tests.alerts.test_channels.BrokenBackend"
    channels.wait(channels.notify(rule, alert, channels.FIRED, 0.9))
    assert len(receiver.bodies) == 1
    assert "Alert budget: email delivery failed" in caplog.text


def test_notify_never_raises(fired, monkeypatch, caplog):
    rule, alert = fired

    def broken(*args):
        raise RuntimeError("database gone")

    monkeypatch.setattr(channels, "notice", broken)
    assert channels.notify(rule, alert, channels.FIRED, 0.9) == []
    assert "Alert budget: could not notify its fired alert" in caplog.text


def test_deliveries_do_not_hold_the_caller(fired, receiver):
    rule, alert = fired
    receiver.delay = 1.0  # a slow receiver
    started = time.monotonic()
    futures = channels.notify(rule, alert, channels.FIRED, 0.9)
    assert time.monotonic() - started < 0.5
    channels.wait(futures)
    assert len(receiver.bodies) == 1


class BrokenBackend:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server")
