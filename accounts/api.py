"""Management API for tenants, users and keys (DRF)."""

from __future__ import annotations

from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import schema  # noqa: F401  (registers the key authentication's OpenAPI description)
from accounts.models import ApiKey, ApiUser, Tenant
from accounts.permissions import IsGatewayAdmin, IsGlobalAdmin, admin_tenant
from accounts.serializers import ApiKeySerializer, ApiUserSerializer, TenantSerializer


class TenantScopedViewSet(viewsets.ModelViewSet):
    """A tenant admin sees only rows of its own tenant; others are 404, not 403,
    so one tenant cannot even learn that another tenant's object exists."""

    tenant_lookup = "tenant_id"

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant = admin_tenant(self.request.user)
        return queryset if tenant is None else queryset.filter(**{self.tenant_lookup: tenant.pk})


class TenantViewSet(TenantScopedViewSet):
    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    tenant_lookup = "pk"

    def get_permissions(self):
        # A tenant admin may read its tenant but not raise its own quotas.
        if self.action in ("list", "retrieve"):
            return [IsGatewayAdmin()]
        return [IsGlobalAdmin()]


class ApiUserViewSet(TenantScopedViewSet):
    queryset = ApiUser.objects.select_related("tenant")
    serializer_class = ApiUserSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant_name = self.request.query_params.get("tenant")
        return queryset.filter(tenant__name=tenant_name) if tenant_name else queryset


class ApiKeyViewSet(TenantScopedViewSet):
    queryset = ApiKey.objects.select_related("tenant", "user")
    serializer_class = ApiKeySerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        user_id = self.request.query_params.get("user")
        return queryset.filter(user_id=user_id) if user_id and user_id.isdigit() else queryset

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = self.get_object()
        key.revoke()
        return Response(self.get_serializer(key).data)

    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        key = self.get_object()
        key.plaintext = key.rotate()
        return Response(self.get_serializer(key).data)
