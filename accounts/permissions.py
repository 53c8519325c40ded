from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.auth import Principal
from accounts.models import Tenant


def is_global_admin(user) -> bool:
    if isinstance(user, Principal):
        return user.global_admin
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def admin_tenant(user) -> Tenant | None:
    """The one tenant a tenant admin manages; None for a global admin."""
    return None if is_global_admin(user) else user.tenant


class IsGatewayAdmin(BasePermission):
    """Global admins (bootstrap key, staff session) and admin-scoped keys.

    Client keys get 403; what a tenant admin may see is narrowed by the views.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, Principal):
            return user.is_admin
        return is_global_admin(user)


class IsGlobalAdmin(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_global_admin(request.user)
