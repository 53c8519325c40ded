from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from unfold.admin import ModelAdmin

from alerts.models import Alert, AlertRule


@admin.register(AlertRule)
class AlertRuleAdmin(ModelAdmin):
    """Saving runs AlertRule.clean(): the API's rules."""

    list_display = ("name", "tenant", "metric_path", "condition", "threshold", "severity", "enabled", "last_fired_at")
    list_filter = ("enabled", "severity", "tenant")
    list_select_related = ("tenant",)
    search_fields = ("name", "metric_path", "description")
    readonly_fields = ("last_fired_at", "created_at", "updated_at")
    actions = ("enable_rules", "disable_rules")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a URL typed without a scheme
    fieldsets = (
        (None, {"fields": ("name", "description", "tenant", "enabled")}),
        ("Condition", {"fields": ("metric_path", "condition", "threshold", "severity", "cooldown_minutes")}),
        ("Channels", {"fields": ("channels", "webhook_url", "slack_webhook_url", "email_to")}),
        ("State", {"fields": ("last_fired_at", "created_at", "updated_at")}),
    )

    @admin.action(description="Enable selected rules")
    def enable_rules(self, request, queryset) -> None:
        count = queryset.update(enabled=True)
        self.message_user(request, f"Enabled {count} rule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected rules")
    def disable_rules(self, request, queryset) -> None:
        count = queryset.update(enabled=False)
        self.message_user(request, f"Disabled {count} rule(s).", messages.SUCCESS)


@admin.register(Alert)
class AlertAdmin(ModelAdmin):
    """Alerts are made by the evaluator: read-only here, but for acknowledging."""

    list_display = ("created_at", "rule_name", "tenant", "severity", "status", "value", "threshold", "acknowledged_by")
    list_filter = ("severity", "status", "rule")
    list_select_related = ("tenant",)
    search_fields = ("rule_name", "metric_path", "message")
    date_hierarchy = "created_at"
    actions = ("acknowledge",)
    readonly_fields = (
        "rule", "rule_name", "tenant", "severity", "status", "metric_path", "condition", "threshold", "value",
        "message", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset) -> None:
        count = queryset.acknowledge(by=request.user.get_username())
        self.message_user(request, f"Acknowledged {count} alert(s).", messages.SUCCESS)
