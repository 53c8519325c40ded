"""Usage reports for admins: `/api/v1/usage/*` and the seed's `/admin/list_costs`.

Views parse and check their query parameters, pick the rows the caller may see
(a tenant admin only its tenant's) and hand them to `usage.reports`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts.permissions import admin_tenant
from core.errors import GatewayError
from usage import reports
from usage.models import UsageRecord

MAX_DAYS = 365
MAX_LIMIT = 1000
DEFAULT_LIMITS = {"customer": 50}  # the contract's default; the other groups are small or capped at MAX_LIMIT
DEFAULT_COST_WINDOW = timedelta(hours=24)
DIGITS = re.compile(r"[0-9]+")
# An unencoded "+" of a UTC offset arrives as a space: "2025-01-01T10:00:00 02:00".
SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}

DAYS = OpenApiParameter("days", OpenApiTypes.INT, description=f"1-{MAX_DAYS}, default 30")
LIMIT = OpenApiParameter("limit", OpenApiTypes.INT, description=f"1-{MAX_LIMIT}; by-customer defaults to 50")
BUCKET = OpenApiParameter("bucket", OpenApiTypes.STR, enum=reports.BUCKETS, description="default day")


def whole_number(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise GatewayError("invalid_request", f"`{name}` must be a whole number from {low} to {high}.", param=name)
    return int(raw)


def boolean(params, name: str) -> bool:
    raw = params.get(name, "").lower()
    if raw in TRUE or raw in FALSE or raw == "":
        return raw in TRUE
    raise GatewayError("invalid_request", f"`{name}` must be true or false.", param=name)


def iso_time(params, name: str) -> datetime | None:
    """An ISO 8601 date or datetime; one without an offset is UTC."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(SPACED_OFFSET.sub(r"\1+\2", raw))
    except ValueError:
        raise GatewayError(
            "invalid_request", f"`{name}` must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z.", param=name
        ) from None
    return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value


def visible_rows(request, days: int) -> QuerySet[UsageRecord]:
    tenant = admin_tenant(request.user)
    return reports.last_days(days, tenant_id=tenant.pk if tenant else None)


def period_days(request) -> int:
    return whole_number(request.query_params, "days", 30, 1, MAX_DAYS)


@extend_schema(parameters=[DAYS], responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def summary(request):
    days = period_days(request)
    return Response({"period_days": days, **reports.summary(visible_rows(request, days))})


@extend_schema(parameters=[DAYS, LIMIT], responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def by_group(request, group: str):
    """`/by-provider`, `/by-service`, `/by-model`, `/by-key`, `/by-customer`: most expensive first."""
    days = period_days(request)
    limit = whole_number(request.query_params, "limit", DEFAULT_LIMITS.get(group, MAX_LIMIT), 1, MAX_LIMIT)
    data = reports.grouped(visible_rows(request, days), group, limit)
    if group == "key":
        data = reports.with_key_labels(data)
    return Response({"period_days": days, "data": data})


@extend_schema(parameters=[DAYS, BUCKET], responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def timeseries(request):
    days = period_days(request)
    bucket = request.query_params.get("bucket") or "day"
    if bucket not in reports.BUCKETS:
        raise GatewayError("invalid_request", "`bucket` must be hour or day.", param="bucket")
    data = reports.timeseries(visible_rows(request, days), bucket)
    return Response({"period_days": days, "bucket": bucket, "data": data})


@extend_schema(
    parameters=[
        OpenApiParameter("last_hours", OpenApiTypes.INT, description="default 24; not with start_time/end_time"),
        OpenApiParameter("start_time", OpenApiTypes.DATETIME, description="ISO 8601; default end_time - 24 h"),
        OpenApiParameter("end_time", OpenApiTypes.DATETIME, description="ISO 8601; default now"),
        OpenApiParameter("by_model", OpenApiTypes.BOOL, description="add model_costs per user"),
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
def list_costs(request):
    """Seed-compatible cost per customer (and per model) over a time range."""
    params = request.query_params
    start, end = cost_range(params)
    tenant = admin_tenant(request.user)
    rows = reports.window(start=start, end=end, tenant_id=tenant.pk if tenant else None)
    return Response({"costs": reports.costs_by_user(rows, by_model=boolean(params, "by_model"))})


def cost_range(params) -> tuple[datetime, datetime | None]:
    start, end = iso_time(params, "start_time"), iso_time(params, "end_time")
    if params.get("last_hours", "") != "":
        if start or end:
            raise GatewayError(
                "invalid_request", "Give `last_hours` or `start_time`/`end_time`, not both.", param="last_hours"
            )
        hours = whole_number(params, "last_hours", 24, 1, MAX_DAYS * 24)
        return timezone.now() - timedelta(hours=hours), None
    if start is None and end is None:
        return timezone.now() - DEFAULT_COST_WINDOW, None
    start = start or end - DEFAULT_COST_WINDOW
    if end is not None and end <= start:
        raise GatewayError("invalid_request", "`end_time` must be after `start_time`.", param="end_time")
    return start, end
