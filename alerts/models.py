"""Alert rules over the gateway's metrics, and the alerts they raise (CONTRACT section 10).

A rule compares one metric (a dotted path such as `providers.openai.error_rate`
or `tenants.acme.budget_used_ratio`) with a threshold. While the comparison
holds, the rule has one open alert (active, or acknowledged by an operator);
when it stops holding, that alert is resolved. A rule raises a new alert at
most once per cooldown. A rule with a tenant belongs to that tenant's admins,
who may watch only their own tenant's metrics.
"""

from __future__ import annotations

import operator

from django.core.validators import MaxValueValidator
from django.db import models

from accounts.models import Tenant
from core.names import name_validator

CONDITIONS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


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


class AlertStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)


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

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "severity"])]

    def __str__(self) -> str:
        return f"{self.rule_name} ({self.severity}, {self.status})"
