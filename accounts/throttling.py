"""Per-endpoint rate limits on the management API, with django-ratelimit.

Counts live in Django's cache, so with REDIS_URL every process shares them.
Each endpoint (view and action) has its own budget per caller: an admin key,
a staff session or, unauthenticated, the client address. The /v1 path does not
come through here: its token-weighted limits are usage.limits.
"""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from accounts.auth import Principal


def caller(request) -> str:
    """Who is calling, without any secret in it (a key's id, never the key)."""
    user = getattr(request, "user", None)
    if isinstance(user, Principal):
        return "gateway-admin" if user.global_admin else f"key:{user.key.pk}"
    if user is not None and getattr(user, "is_authenticated", False):
        return f"staff:{user.pk}"
    return "ip:" + request.META.get("REMOTE_ADDR", "")


class ManagementRateThrottle(BaseThrottle):
    """`settings.MANAGEMENT_RATE_LIMIT` (e.g. "600/m") per caller and endpoint; empty turns it off."""

    wait_seconds: int | None = None

    def allow_request(self, request, view) -> bool:
        rate = settings.MANAGEMENT_RATE_LIMIT
        if not rate:
            return True
        endpoint = f"{type(view).__module__}.{type(view).__name__}.{getattr(view, 'action', None) or request.method}"
        who = caller(request)
        usage = get_usage(request, group=f"mgmt:{endpoint}", key=lambda group, req: who, rate=rate, increment=True)
        if usage is None or not usage["should_limit"]:
            return True
        self.wait_seconds = max(1, int(usage["time_left"]))
        return False

    def wait(self) -> int | None:
        return self.wait_seconds
