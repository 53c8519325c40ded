from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from accounts.models import ApiKey, ApiUser, Tenant
from accounts.permissions import admin_tenant
from core.errors import GatewayError
from core.names import MODEL_NAME_RE, name_validator

LIMIT_FIELDS = ["token_quota", "budget_usd", "quota_period", "rpm", "tpm"]


def scope_of(serializer: serializers.Serializer):
    """The tenant the caller is confined to, or None for a global admin."""
    return admin_tenant(serializer.context["request"].user)


def conflict(message: str, param: str) -> GatewayError:
    return GatewayError("conflict", message, param=param)


class TenantSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=100, validators=[name_validator])

    class Meta:
        model = Tenant
        fields = ["id", "name", "is_active", *LIMIT_FIELDS, "created_at"]

    def validate_name(self, value: str) -> str:
        taken = Tenant.objects.filter(name=value).exclude(pk=getattr(self.instance, "pk", None))
        if taken.exists():
            raise conflict(f"A tenant named {value!r} already exists.", "name")
        return value


class TenantField(serializers.SlugRelatedField):
    """A tenant by name, limited to the caller's own tenant for tenant admins."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", **kwargs)

    def get_queryset(self):
        scope = scope_of(self.parent)
        return Tenant.objects.all() if scope is None else Tenant.objects.filter(pk=scope.pk)


class ApiUserSerializer(serializers.ModelSerializer):
    tenant = TenantField(required=False)
    username = serializers.CharField(max_length=100, validators=[name_validator])

    class Meta:
        model = ApiUser
        fields = ["id", "tenant", "username", "email", "is_active", *LIMIT_FIELDS, "created_at"]
        # Uniqueness per tenant is checked in validate() (409), where the
        # tenant may come from the caller's scope rather than the payload.
        validators = []

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None:
            tenant = self.instance.tenant
            if attrs.get("tenant", tenant) != tenant:
                raise serializers.ValidationError({"tenant": "A user cannot move to another tenant."})
        else:
            tenant = attrs.get("tenant") or scope_of(self)
            if tenant is None:
                raise serializers.ValidationError({"tenant": "This field is required."})
            attrs["tenant"] = tenant
        username = attrs.get("username")
        if username is not None:
            taken = ApiUser.objects.filter(tenant=tenant, username=username)
            if self.instance is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                raise conflict(f"User {username!r} already exists in tenant {tenant.name!r}.", "username")
        return attrs


class UserField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        scope = scope_of(self.parent)
        users = ApiUser.objects.select_related("tenant")
        return users if scope is None else users.filter(tenant=scope)


class ApiKeySerializer(serializers.ModelSerializer):
    user = UserField()
    tenant = serializers.CharField(source="tenant.name", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    allowed_models = serializers.ListField(child=serializers.RegexField(MODEL_NAME_RE), required=False, max_length=1000)
    expires_in_days = serializers.IntegerField(write_only=True, required=False, min_value=1, max_value=36500)

    class Meta:
        model = ApiKey
        fields = [
            "id", "tenant", "user", "username", "name", "prefix", "is_admin", *LIMIT_FIELDS,
            "max_parallel", "allowed_models", "expires_at", "expires_in_days", "is_active",
            "revoked_at", "last_used_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["prefix", "is_active", "revoked_at", "last_used_at"]

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None and "user" in attrs and attrs["user"] != self.instance.user:
            raise serializers.ValidationError({"user": "A key cannot move to another user."})
        days = attrs.pop("expires_in_days", None)
        if days is not None:
            attrs["expires_at"] = timezone.now() + timedelta(days=days)
        return attrs

    def create(self, validated_data: dict) -> ApiKey:
        key, raw = ApiKey.objects.create_key(**validated_data)
        key.plaintext = raw
        return key

    def to_representation(self, instance: ApiKey) -> dict:
        data = super().to_representation(instance)
        plaintext = getattr(instance, "plaintext", None)
        if plaintext:
            data["api_key"] = plaintext
        return data
