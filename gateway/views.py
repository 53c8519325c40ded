from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core import metrics
from core.errors import GatewayError, error_response, internal_error

logger = logging.getLogger("gateway")


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
