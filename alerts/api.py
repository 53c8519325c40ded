"""Management API for alert rules and alerts (CONTRACT section 10):
`/v1/rules` (by name) and `/v1/alerts`.

Any admin; a tenant admin sees and changes only its own tenant's rules and
alerts (another tenant's are 404), and its rules watch only its own tenant's
metrics (`AlertRule.clean`). A global admin sees everything, and may give a
rule a tenant or none.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.auth import Principal
from accounts.permissions import IsGatewayAdmin, admin_tenant
from alerts.models import OPEN_STATUSES, Alert, AlertRule, AlertStatus
from alerts.serializers import OPEN, AlertFilterSerializer, AlertRuleSerializer, AlertSerializer
from core.errors import GatewayError


class TenantScoped:
    def get_queryset(self):
        queryset = super().get_queryset()
        tenant = admin_tenant(self.request.user)
        return queryset if tenant is None else queryset.filter(tenant=tenant)


class AlertRuleViewSet(TenantScoped, viewsets.ModelViewSet):
    queryset = AlertRule.objects.select_related("tenant")
    serializer_class = AlertRuleSerializer
    permission_classes = [IsGatewayAdmin]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"  # rule names may hold dots


class AlertViewSet(TenantScoped, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Alert.objects.select_related("tenant")
    serializer_class = AlertSerializer
    permission_classes = [IsGatewayAdmin]

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = AlertFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        if "severity" in wanted:
            queryset = queryset.filter(severity=wanted["severity"])
        if wanted.get("status") == OPEN:
            queryset = queryset.filter(status__in=OPEN_STATUSES)
        elif "status" in wanted:
            queryset = queryset.filter(status=wanted["status"])
        if "rule" in wanted:
            queryset = queryset.filter(rule_name=wanted["rule"])
        return queryset

    @extend_schema(parameters=[AlertFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Active -> acknowledged (by the caller). Acknowledging again changes
        nothing; a resolved alert is a 409."""
        alert = self.get_object()
        if not alert.acknowledge(by=caller_name(request.user)) and alert.status == AlertStatus.RESOLVED:
            raise GatewayError("conflict", f"Alert {alert.pk} is resolved.", param="id")
        return Response(self.get_serializer(alert).data)


def caller_name(user) -> str:
    """Who acknowledged, as operators read it (never a secret)."""
    if isinstance(user, Principal):
        if user.global_admin:
            return "gateway-admin"
        return f"{user.key.user.username} (key {user.key.prefix}…)"
    return user.get_username()
