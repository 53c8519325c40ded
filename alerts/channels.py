"""Where alerts go: log, webhook, slack, email.

`notify()` is called by the evaluator when an alert fires or resolves. It reads
everything a delivery needs from the rule and the alert there (no database
work afterwards), writes the log line at once, and hands every other channel
to a small pool of threads: a slow or dead receiver holds one of those
threads for a bounded time (TIMEOUT per attempt, ATTEMPTS attempts), never the
evaluator or a request. A failing delivery is logged and goes no further.

Webhook: POST of `{"event": "fired"|"resolved", "text", "value", "alert": {...}}`
(the alert as the API shows it). Slack: POST of `{"text": ...}` to an incoming
webhook. Both are retried on a connection failure or a 5xx, with backoff; not
on a 4xx (the receiver refuses it, and would again) nor on a read timeout (it
may have been received).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from django.core.mail import get_connection, send_mail

from alerts.models import Alert, AlertRule, Channel, Severity, number
from alerts.serializers import AlertSerializer

logger = logging.getLogger("gateway.alerts")

FIRED = "fired"
RESOLVED = "resolved"
TIMEOUT = 5.0  # seconds per attempt (connect, send, read)
ATTEMPTS = 3
BACKOFF = 0.5  # seconds before the second attempt, doubled before each next one
WORKERS = 4

LOG_LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class Notice:
    """One alert event, with where it goes: what a delivery thread needs."""

    event: str  # FIRED | RESOLVED
    rule: str
    severity: str
    text: str
    value: float | None
    alert: dict
    webhook_url: str
    slack_webhook_url: str
    email_to: tuple[str, ...]

    def body(self) -> dict:
        return {"event": self.event, "text": self.text, "value": self.value, "alert": self.alert}


def notice(rule: AlertRule, alert: Alert, event: str, value: float | None) -> Notice:
    if event == FIRED:
        text = f"[{alert.severity.upper()}] Alert fired: {alert.message}"
    else:
        now = number(value) if value is not None else "no value"
        text = (
            f"[RESOLVED] Alert resolved: {rule.name}: {alert.metric_path} is {now}, "
            f"no longer {alert.condition} {number(alert.threshold)}"
        )
    return Notice(
        event=event,
        rule=rule.name,
        severity=alert.severity,
        text=text,
        value=value,
        alert=dict(AlertSerializer(alert).data),
        webhook_url=rule.webhook_url,
        slack_webhook_url=rule.slack_webhook_url,
        email_to=tuple(rule.email_to or ()),
    )


def notify(rule: AlertRule, alert: Alert, event: str, value: float | None) -> list[Future]:
    """Send an alert event to each of the rule's channels; the futures of the
    deliveries under way (wait() them where the process is about to exit).
    Never raises: the evaluator goes on with the next rule."""
    futures = []
    try:
        message = notice(rule, alert, event, value)
        for channel in rule.channels:
            if channel == Channel.LOG:
                deliver(Channel.LOG, message)
            elif channel in SENDERS:
                futures.append(_executor().submit(deliver, channel, message))
    except Exception:
        logger.exception("Alert %s: could not notify its %s alert %s", rule.name, event, alert.pk)
    return futures


def deliver(channel: str, message: Notice) -> bool:
    """Send one notice through one channel; True if delivered. Never raises."""
    try:
        return SENDERS[channel](message)
    except Exception:
        logger.exception("Alert %s: %s delivery failed", message.rule, channel)
        return False


def wait(futures: list[Future], timeout: float | None = None) -> None:
    """Wait for deliveries to finish (each is bounded by its timeouts)."""
    wait_futures(futures, timeout=timeout)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="alert-delivery")
        return _pool


# --------------------------------------------------------------------------- channels


def send_log(message: Notice) -> bool:
    level = logging.INFO if message.event == RESOLVED else LOG_LEVELS.get(message.severity, logging.WARNING)
    logger.log(level, "%s", message.text)
    return True


def send_webhook(message: Notice) -> bool:
    return post_json(message.webhook_url, message.body(), what=f"Alert {message.rule}: webhook")


def send_slack(message: Notice) -> bool:
    return post_json(message.slack_webhook_url, {"text": message.text}, what=f"Alert {message.rule}: slack")


def send_email(message: Notice) -> bool:
    # A connection of our own, for its timeout: Django's SMTP default is none.
    connection = get_connection(timeout=TIMEOUT)
    send_mail(
        subject=message.text[:200],
        message=f"{message.text}\n\n" + "\n".join(f"{k}: {v}" for k, v in message.alert.items()),
        from_email=None,
        recipient_list=list(message.email_to),
        connection=connection,
    )
    return True


SENDERS: dict[str, Callable[[Notice], bool]] = {
    Channel.LOG: send_log,
    Channel.WEBHOOK: send_webhook,
    Channel.SLACK: send_slack,
    Channel.EMAIL: send_email,
}


def post_json(url: str, body: dict, *, what: str) -> bool:
    """POST JSON with bounded retries; True on a 2xx. Logs, never raises for
    an HTTP failure. The URL is logged by host only: a Slack webhook URL is a
    secret."""
    host = urlsplit(url).netloc
    problem = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = httpx.post(url, json=body, timeout=TIMEOUT)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            problem = f"cannot connect ({type(exc).__name__})"
        else:
            if response.is_success:
                return True
            if response.status_code < 500:
                logger.error("%s to %s refused with HTTP %d; not retried", what, host, response.status_code)
                return False
            problem = f"HTTP {response.status_code}"
        if attempt < ATTEMPTS:
            time.sleep(BACKOFF * 2 ** (attempt - 1))
    logger.error("%s to %s failed after %d attempts: %s", what, host, ATTEMPTS, problem)
    return False
