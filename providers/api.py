"""Management API for providers, overrides and the config file (DRF), and the
seed-compatible `/providers`, `/v1/providers/...` and `/v1/config/...` paths."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts.models import ApiUser
from accounts.permissions import IsGatewayAdmin, IsGlobalAdmin, admin_tenant
from core.errors import GatewayError
from providers import config, model_listing
from providers.models import Override, Provider
from providers.serializers import (
    ConnectionCheckSerializer,
    ModelSelectionSerializer,
    OverrideSerializer,
    ProviderListingResponseSerializer,
    ProviderListingSerializer,
    ProviderModelListSerializer,
    ProviderModelSerializer,
    ProviderSerializer,
)

READ_ACTIONS = ("list", "retrieve")


class ReadForAdminsWriteForGlobal:
    """Any admin may read; only a global admin may change (or call out upstream)."""

    def get_permissions(self):
        if self.action in READ_ACTIONS:
            return [IsGatewayAdmin()]
        return [IsGlobalAdmin()]


class ProviderViewSet(ReadForAdminsWriteForGlobal, viewsets.ModelViewSet):
    queryset = Provider.objects.all()
    serializer_class = ProviderSerializer

    @extend_schema(request=None, responses=ConnectionCheckSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        provider = self.get_object()
        success, error = model_listing.check_provider(provider)
        return Response({"success": success, "error": model_listing.scrub(error, provider) if error else None})


class OverrideViewSet(viewsets.ModelViewSet):
    """Any admin manages overrides. A tenant admin sees its tenant's own and the
    global ones naming its users, and changes only its own (CONTRACT section 2)."""

    queryset = Override.objects.select_related("provider", "tenant")
    serializer_class = OverrideSerializer
    permission_classes = [IsGatewayAdmin]

    def get_queryset(self):
        queryset = super().get_queryset()
        tenant = admin_tenant(self.request.user)
        if tenant is not None:
            usernames = ApiUser.objects.filter(tenant=tenant).values("username")
            queryset = queryset.filter(Q(tenant=tenant) | Q(tenant__isnull=True, user_id__in=usernames))
        user_id = self.request.query_params.get("user_id")
        return queryset.filter(user_id=user_id) if user_id else queryset

    def get_object(self) -> Override:
        override = super().get_object()
        tenant = admin_tenant(self.request.user)
        if tenant is not None and self.action not in READ_ACTIONS and override.tenant_id != tenant.pk:
            raise PermissionDenied("This override applies to every tenant: only a global admin may change it.")
        return override


# --------------------------------------------------------------------------- seed-compatible paths


def _provider(name: str) -> Provider:
    provider = Provider.objects.filter(name=name).first()
    if provider is None:
        raise GatewayError("not_found", f"Provider {name!r} not found.")
    return provider


def _model_entries(provider: Provider) -> list[dict]:
    selected = set(provider.models or [])
    ids = sorted(selected | set(provider.available_models or []))
    return [{"id": i, "object": "model", "owned_by": provider.name, "selected": i in selected} for i in ids]


@extend_schema(responses=ProviderListingResponseSerializer)
@api_view(["GET"])
def provider_listing(request):
    providers = Provider.objects.all()
    return Response({"providers": ProviderListingSerializer(providers, many=True).data})


@extend_schema(responses=ProviderModelListSerializer)
@api_view(["GET"])
def provider_models(request, name: str):
    return Response({"object": "list", "data": _model_entries(_provider(name))})


@extend_schema(responses=ProviderModelSerializer, operation_id="v1_providers_model_retrieve")
@api_view(["GET"])
def provider_model(request, name: str, model_id: str):
    for entry in _model_entries(_provider(name)):
        if entry["id"] == model_id:
            return Response(entry)
    raise GatewayError("not_found", f"Model {model_id!r} not found for provider {name!r}.", param="model_id")


@extend_schema(request=ModelSelectionSerializer, responses=ProviderSerializer)
@api_view(["PUT"])
@permission_classes([IsGlobalAdmin])
def model_selection(request, name: str):
    provider = _provider(name)
    data = ModelSelectionSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    provider.models = list(dict.fromkeys(data.validated_data["models"]))
    provider.save(update_fields=["models", "updated_at"])
    return Response(ProviderSerializer(provider, context={"request": request}).data)


@extend_schema(request=None, responses=ProviderModelListSerializer)
@api_view(["POST"])
@permission_classes([IsGlobalAdmin])
def refresh_models(request, name: str):
    provider = _provider(name)
    try:
        models = model_listing.fetch_upstream_models(provider)
    except RuntimeError as exc:
        raise GatewayError(
            "upstream_error", model_listing.scrub(f"Model list refresh failed: {exc}", provider)
        ) from None
    provider.available_models = models
    provider.save(update_fields=["available_models", "updated_at"])
    return Response({"object": "list", "data": _model_entries(provider)})


@extend_schema(request=None, responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
@api_view(["POST"])
@permission_classes([IsGlobalAdmin])
def config_reload(request):
    ok, result = config.reload()
    if not ok:
        body = GatewayError("invalid_request", f"config rejected: {len(result)} error(s)").body()
        return Response({**body, "errors": result}, status=400)
    return Response({"success": True, "summary": result})


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def config_status(request):
    return Response(config.config_status())
