from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts.permissions import admin_tenant
from core import metrics
from core.errors import GatewayError, error_response, internal_error
from gateway import health as gateway_health
from usage import stats
from usage.api import whole_number

logger = logging.getLogger("gateway")

MAX_METRICS_MINUTES = 60  # a recent window: its latencies are read for the percentiles
UP_DOWN = ("healthy", "unhealthy")  # /api/v1/health: the process and its database


# --------------------------------------------------------------------------- response shapes (documentation)


class ApiHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(UP_DOWN)
    service = serializers.CharField()
    database = serializers.ChoiceField(UP_DOWN)


class ProviderCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    healthy = serializers.IntegerField()
    degraded = serializers.IntegerField()
    unhealthy = serializers.IntegerField()
    disabled = serializers.IntegerField()


class SystemSerializer(serializers.Serializer):
    cpu_percent = serializers.FloatField()
    memory_percent = serializers.FloatField()
    memory_used_mb = serializers.FloatField()
    disk_percent = serializers.FloatField()


class AlertCountsSerializer(serializers.Serializer):
    active = serializers.IntegerField()
    critical = serializers.IntegerField(help_text="Active alerts of severity critical.")
    warning = serializers.IntegerField(help_text="Active alerts of severity warning.")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(gateway_health.GATEWAY_STATUSES)
    health_score = serializers.FloatField(min_value=0, max_value=100)
    timestamp = serializers.DateTimeField()
    response_time = serializers.FloatField(help_text="Seconds this check took.")
    providers = ProviderCountsSerializer()
    system = SystemSerializer()
    alerts = AlertCountsSerializer()


class ProviderHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    enabled = serializers.BooleanField()
    circuit = serializers.ChoiceField(["closed", "half_open", "open"])
    models = serializers.IntegerField(help_text="How many models it serves.")
    requests = serializers.IntegerField()
    error_rate = serializers.FloatField()
    p50_latency_ms = serializers.FloatField()
    p95_latency_ms = serializers.FloatField()
    status = serializers.ChoiceField(gateway_health.PROVIDER_STATUSES)


class ProvidersHealthSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField()
    providers = ProviderHealthSerializer(many=True)


class FiguresSerializer(serializers.Serializer):
    total_requests = serializers.IntegerField()
    successful_requests = serializers.IntegerField()
    failed_requests = serializers.IntegerField(help_text="Answered 5xx.")
    success_rate = serializers.FloatField()
    error_rate = serializers.FloatField()
    avg_response_time = serializers.FloatField(help_text="Milliseconds.")
    p50_latency_ms = serializers.FloatField()
    p95_latency_ms = serializers.FloatField()
    total_tokens = serializers.IntegerField()
    requests_per_minute = serializers.FloatField()


class MetricsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField()
    since = serializers.DateTimeField()
    providers = serializers.DictField(child=FiguresSerializer(), help_text="By provider name.")
    summary = FiguresSerializer(help_text="All traffic, calls refused before routing included.")


# --------------------------------------------------------------------------- views


@extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])  # load balancers and monitors poll it
def health(request):
    """The gateway's health: providers, circuit breakers, recent errors, alerts, the machine's load.
    No auth; 503 when unhealthy (the score and rules: gateway.health)."""
    body, status = gateway_health.health_report()
    return Response(body, status=status)


@extend_schema(responses=ProvidersHealthSerializer)
@api_view(["GET"])
def providers_health(request):
    """Each provider's state and last minutes of traffic. Any admin key; a tenant
    admin's figures are its own tenant's traffic."""
    tenant = admin_tenant(request.user)
    return Response(gateway_health.providers_report(tenant_id=tenant.pk if tenant else None))


@extend_schema(
    parameters=[
        OpenApiParameter(
            "minutes", OpenApiTypes.INT, description=f"window, 1-{MAX_METRICS_MINUTES}, default {stats.RECENT_MINUTES}"
        )
    ],
    responses=MetricsSerializer,
)
@api_view(["GET"])
def metrics_json(request):
    """Recent traffic per provider and overall, from the usage table (every worker's).
    Any admin key; a tenant admin sees its own tenant's traffic."""
    minutes = whole_number(request.query_params, "minutes", stats.RECENT_MINUTES, 1, MAX_METRICS_MINUTES)
    tenant = admin_tenant(request.user)
    return Response(gateway_health.metrics_report(minutes, tenant_id=tenant.pk if tenant else None))


@extend_schema(responses={200: ApiHealthSerializer, 503: ApiHealthSerializer})
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])  # load balancers poll it
def api_health(request):
    """Liveness of this process and its database; no auth, so load balancers can call it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "healthy"
    except Exception:
        logger.exception("Database health check failed")
        database = "unhealthy"
    healthy = database == "healthy"
    return Response(
        {"status": "healthy" if healthy else "unhealthy", "service": "llm-gateway", "database": database},
        status=200 if healthy else 503,
    )


@csrf_exempt  # no session, no state: the method check below answers anything but GET
def prometheus(request) -> HttpResponse:
    """Prometheus text format, no auth (scrapers rarely carry keys); every process's values."""
    if request.method != "GET":
        return error_response(GatewayError("method_not_allowed", "Use GET for /metrics/prometheus."))
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


# Django's error handlers, so even paths outside DRF answer with the contract's JSON.
def handler400(request, exception=None) -> JsonResponse:
    return error_response(GatewayError("invalid_request", "Bad request."))


def handler403(request, exception=None) -> JsonResponse:
    return error_response(GatewayError("insufficient_permissions", "Permission denied."))


def handler404(request, exception=None) -> JsonResponse:
    return error_response(GatewayError("not_found", f"Unknown path: {request.path}"))


def handler500(request) -> JsonResponse:
    return error_response(internal_error())
