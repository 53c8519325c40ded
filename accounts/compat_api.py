"""Seed-compatible admin paths (`/admin/gen_key`, `/admin/list_users`,
`/admin/forbid_key`), kept for clients written against the original service."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from accounts.models import ApiKey, ApiUser, Tenant, hash_key
from accounts.permissions import admin_tenant
from core.errors import GatewayError
from core.names import name_validator

DEFAULT_TENANT = "default"


class GenKeyInput(serializers.Serializer):
    username = serializers.CharField(max_length=100, validators=[name_validator])
    tenant = serializers.CharField(max_length=100, validators=[name_validator], required=False)


class ForbidKeyInput(serializers.Serializer):
    username = serializers.CharField(max_length=100, required=False)
    api_key = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("username") and not attrs.get("api_key"):
            raise serializers.ValidationError("Give `username` or `api_key`.")
        return attrs


class GenKeyOutput(serializers.Serializer):
    """The new key, in plaintext this once."""

    username = serializers.CharField()
    api_key = serializers.CharField()
    id = serializers.IntegerField()
    tenant = serializers.CharField()


class ListedUser(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    tenant = serializers.CharField()
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ListUsersOutput(serializers.Serializer):
    users = ListedUser(many=True)


class ForbidKeyOutput(serializers.Serializer):
    revoked = serializers.IntegerField(help_text="How many keys were revoked.")
    keys = serializers.ListField(child=serializers.CharField(), help_text="Their display prefixes.")


def _tenant_for(request, requested: str | None) -> Tenant:
    scope = admin_tenant(request.user)
    if scope is not None:
        if requested and requested != scope.name:
            raise GatewayError("not_found", f"Tenant {requested!r} not found.", param="tenant")
        return scope
    tenant, _ = Tenant.objects.get_or_create(name=requested or DEFAULT_TENANT)
    return tenant


@extend_schema(request=GenKeyInput, responses={201: GenKeyOutput})
@api_view(["POST"])
def gen_key(request):
    data = GenKeyInput(data=request.data)
    data.is_valid(raise_exception=True)
    with transaction.atomic():
        tenant = _tenant_for(request, data.validated_data.get("tenant"))
        user, _ = ApiUser.objects.get_or_create(tenant=tenant, username=data.validated_data["username"])
        key, raw = ApiKey.objects.create_key(user=user)
    return Response({"username": user.username, "api_key": raw, "id": key.pk, "tenant": tenant.name}, status=201)


@extend_schema(responses=ListUsersOutput)
@api_view(["GET"])
def list_users(request):
    users = ApiUser.objects.select_related("tenant").order_by("tenant__name", "username")
    scope = admin_tenant(request.user)
    if scope is not None:
        users = users.filter(tenant=scope)
    return Response(
        {
            "users": [
                {
                    "id": user.pk,
                    "username": user.username,
                    "tenant": user.tenant.name,
                    "is_active": user.is_active,
                    "created_at": user.created_at,
                }
                for user in users
            ]
        }
    )


@extend_schema(request=ForbidKeyInput, responses=ForbidKeyOutput)
@api_view(["POST"])
def forbid_key(request):
    data = ForbidKeyInput(data=request.data)
    data.is_valid(raise_exception=True)
    keys = ApiKey.objects.select_related("user")
    scope = admin_tenant(request.user)
    if scope is not None:
        keys = keys.filter(tenant=scope)
    if data.validated_data.get("api_key"):
        keys = keys.filter(key_hash=hash_key(data.validated_data["api_key"]))
    if data.validated_data.get("username"):
        keys = keys.filter(user__username=data.validated_data["username"])
    keys = list(keys)
    if not keys:
        raise GatewayError("not_found", "No matching key.")
    for key in keys:
        key.revoke()
    return Response({"revoked": len(keys), "keys": [key.prefix for key in keys]})
