from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.serializers import TenantField, conflict, scope_of
from alerts.models import Alert, AlertRule, AlertStatus, Channel, Severity

OPEN = "open"  # a status filter: active or acknowledged


class AlertRuleSerializer(serializers.ModelSerializer):
    """An alert rule: while `metric_path` compared by `condition` with `threshold`
    holds, the rule has one open alert, sent to its `channels`. A tenant admin's
    rules belong to its tenant and watch only its metrics
    (`tenants.<tenant>.<ratio>`, `keys.<key prefix>.<ratio>`)."""

    # Every rule beyond a field's own is the model's (AlertRule.clean), as in the admin.

    tenant = TenantField(required=False, allow_null=True)
    channels = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        max_length=len(Channel.values),
        help_text=f"Any of: {', '.join(Channel.values)}.",
    )
    email_to = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, max_length=100, help_text="For the email channel."
    )

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "description", "tenant", "metric_path", "condition", "threshold", "severity", "enabled",
            "cooldown_minutes", "channels", "webhook_url", "slack_webhook_url", "email_to", "last_fired_at",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["last_fired_at", "created_at", "updated_at"]
        extra_kwargs = {
            # The name's rules without the unique check: a taken name is a 409 (validate_name).
            "name": {"validators": AlertRule._meta.get_field("name").validators},
        }

    def validate_name(self, value: str) -> str:
        taken = AlertRule.objects.filter(name=value).exclude(pk=getattr(self.instance, "pk", None))
        if taken.exists():
            raise conflict(f"An alert rule named {value!r} already exists.", "name")
        return value

    def validate(self, attrs: dict) -> dict:
        scope = scope_of(self)
        if scope is not None:
            attrs["tenant"] = scope
        # The rule as it would be saved, checked by the model's own rules.
        candidate = AlertRule()
        if self.instance is not None:
            for field in AlertRule._meta.concrete_fields:
                setattr(candidate, field.attname, getattr(self.instance, field.attname))
        for name, value in attrs.items():
            setattr(candidate, name, value)
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        attrs["channels"] = candidate.channels  # without duplicates
        return attrs


class AlertSerializer(serializers.ModelSerializer):
    """One firing of a rule: active, then acknowledged or not, then resolved."""

    rule = serializers.CharField(source="rule_name", read_only=True)
    tenant = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "tenant", "severity", "status", "metric_path", "condition", "threshold", "value",
            "message", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
        ]  # fmt: skip
        read_only_fields = fields


class AlertFilterSerializer(serializers.Serializer):
    """The query parameters of `GET /v1/alerts`."""

    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    status = serializers.ChoiceField(
        choices=[*AlertStatus.choices, (OPEN, "Open (active or acknowledged)")], required=False
    )
    rule = serializers.CharField(max_length=100, required=False, help_text="A rule's name.")
