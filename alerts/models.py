"""Alert rules over the gateway's metrics, and the alerts they raise (CONTRACT section 10).

A rule compares one metric (a dotted path such as `providers.openai.error_rate`
or `tenants.acme.budget_used_ratio`) with a threshold. While the comparison
holds, the rule has one open alert (active, or acknowledged by an operator);
when it stops holding, that alert is resolved. A rule raises a new alert at
most once per cooldown. A rule with a tenant belongs to that tenant's admins,
who may watch only their own tenant's metrics.
"""

from __future__ import annotations

import math
import operator
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, validate_email
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Tenant
from alerts.metrics import check_path
from core.names import name_validator

CONDITIONS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def number(value: float) -> str:
    """A figure as people read it: 0.5455, 1, 12345.6 (not 1.235e+04)."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class Channel(models.TextChoices):
    LOG = "log", "Log"
    WEBHOOK = "webhook", "Webhook (POST JSON)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email"


class AlertRule(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules",
        help_text="The tenant whose admins own this rule; empty: global admins only.",
    )  # fmt: skip
    metric_path = models.CharField(max_length=200, help_text="e.g. providers.openai.error_rate")
    condition = models.CharField(max_length=2, choices=[(c, c) for c in CONDITIONS])
    threshold = models.FloatField()
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    cooldown_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="At most one new alert per this many minutes.",
    )
    channels = models.JSONField(default=list, blank=True, help_text='Where alerts go: ["log", "webhook", ...].')
    webhook_url = models.URLField(max_length=500, blank=True, help_text="For the webhook channel.")
    slack_webhook_url = models.URLField(max_length=500, blank=True, help_text="For the slack channel.")
    email_to = models.JSONField(default=list, blank=True, help_text="For the email channel: a list of addresses.")
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def holds(self, value: float) -> bool:
        return CONDITIONS[self.condition](value, self.threshold)

    def clean(self) -> None:
        """The rules of a rule beyond its fields' own, for the API and the admin
        alike: a metric path that exists (and is on the rule's tenant, when it
        has one), known channels, and each used channel's address."""
        errors: dict[str, str] = {}
        if self.metric_path:
            try:
                check_path(self.metric_path, self.tenant if self.tenant_id else None)
            except ValidationError as exc:
                errors["metric_path"] = exc.messages[0]
        if self.threshold is not None and not math.isfinite(self.threshold):
            errors["threshold"] = "Enter a finite number."
        channels = self.channels
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            errors["channels"] = f"Enter a list of channel names ({', '.join(Channel.values)})."
            channels = []
        unknown = [c for c in channels if c not in Channel.values]
        if unknown:
            errors["channels"] = f"Unknown channel {unknown[0]!r}: use {', '.join(Channel.values)}."
        self.channels = list(dict.fromkeys(channels))
        if Channel.WEBHOOK in channels and not self.webhook_url:
            errors["webhook_url"] = "The webhook channel needs a webhook_url."
        if Channel.SLACK in channels and not self.slack_webhook_url:
            errors["slack_webhook_url"] = "The slack channel needs a slack_webhook_url."
        email_error = self._email_error(Channel.EMAIL in channels)
        if email_error:
            errors["email_to"] = email_error
        if errors:
            raise ValidationError(errors)

    def _email_error(self, needed: bool) -> str | None:
        addresses = self.email_to
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            return "Enter a list of email addresses."
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                return f"{address!r} is not an email address."
        if needed and not addresses:
            return "The email channel needs at least one address in email_to."
        return None

    def describe(self, value: float) -> str:
        return f"{self.name}: {self.metric_path} is {number(value)} ({self.condition} {number(self.threshold)})"

    def fire(self, value: float, now: datetime | None = None) -> Alert | None:
        """A new active alert, unless the rule is in its cooldown or another
        evaluator has just fired it.

        The claim is a conditional UPDATE of last_fired_at from the value read
        (compare-and-set): of two evaluators that read the same rule, one wins,
        whatever the cooldown (0 included) and with no lock.
        """
        now = now or timezone.now()
        if self.last_fired_at is not None and now - self.last_fired_at < timedelta(minutes=self.cooldown_minutes):
            return None
        with transaction.atomic():
            claimed = AlertRule.objects.filter(pk=self.pk, last_fired_at=self.last_fired_at).update(last_fired_at=now)
            if not claimed:
                return None
            self.last_fired_at = now
            return Alert.objects.create(
                rule=self,
                rule_name=self.name,
                tenant_id=self.tenant_id,
                severity=self.severity,
                metric_path=self.metric_path,
                condition=self.condition,
                threshold=self.threshold,
                value=value,
                message=self.describe(value),
            )


class AlertStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)


class AlertQuerySet(models.QuerySet):
    def acknowledge(self, by: str, now: datetime | None = None) -> int:
        """Acknowledge the active alerts among these; returns how many. A
        conditional UPDATE: an alert resolved meanwhile stays resolved."""
        return self.filter(status=AlertStatus.ACTIVE).update(
            status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now or timezone.now(), acknowledged_by=by[:150]
        )

    def resolve(self, now: datetime | None = None) -> int:
        """Resolve the open alerts among these; returns how many."""
        return self.filter(status__in=OPEN_STATUSES).update(
            status=AlertStatus.RESOLVED, resolved_at=now or timezone.now()
        )


class Alert(models.Model):
    """One firing of a rule, from when its condition held until it cleared."""

    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=100)  # kept when the rule is deleted
    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=AlertStatus.choices, default=AlertStatus.ACTIVE)
    metric_path = models.CharField(max_length=200)
    condition = models.CharField(max_length=2)
    threshold = models.FloatField()
    value = models.FloatField(help_text="The metric's value when the alert fired.")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"{self.rule_name} ({self.severity}, {self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def acknowledge(self, by: str) -> bool:
        """Active -> acknowledged; False if it was not active (already
        acknowledged, or resolved). The instance is reloaded either way."""
        done = Alert.objects.filter(pk=self.pk).acknowledge(by)
        self.refresh_from_db()
        return bool(done)

    def resolve(self, now: datetime | None = None) -> bool:
        """Open -> resolved, once: False if another evaluator resolved it first."""
        now = now or timezone.now()
        done = Alert.objects.filter(pk=self.pk).resolve(now)
        if done:
            self.status, self.resolved_at = AlertStatus.RESOLVED, now
        return bool(done)
