from __future__ import annotations

from rest_framework import serializers

from accounts.serializers import TenantField, conflict, scope_of
from core.names import MODEL_NAME_RE
from providers.models import Override, Provider


def model_names(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.RegexField(MODEL_NAME_RE), max_length=10000, **kwargs)


class ProviderSerializer(serializers.ModelSerializer):
    """Each field's rules are the model field's (providers.models), as in the
    YAML loader and the admin."""

    api_key_masked = serializers.CharField(source="masked_api_key", read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id", "name", "display_name", "type", "base_url", "api_key", "api_key_masked", "api_key_env",
            "models", "available_models", "is_enabled", "priority", "rate_limit_rpm", "rate_limit_tpm",
            "timeout", "max_retries", "custom_headers", "responses", "from_config", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["available_models", "from_config"]
        extra_kwargs = {
            # The name's rules without the unique check: a taken name is a 409 (validate_name).
            "name": {"validators": Provider._meta.get_field("name").validators},
            # Write-only: the stored key is never sent back, only its masked form.
            "api_key": {"write_only": True, "style": {"input_type": "password"}},
        }

    def validate_name(self, value: str) -> str:
        taken = Provider.objects.filter(name=value).exclude(pk=getattr(self.instance, "pk", None))
        if taken.exists():
            raise conflict(f"A provider named {value!r} already exists.", "name")
        return value


class ProviderListingSerializer(serializers.ModelSerializer):
    """A provider as the seed-compatible `GET /providers` lists it."""

    enabled = serializers.BooleanField(source="is_enabled")
    api_key_masked = serializers.CharField(source="masked_api_key")

    class Meta:
        model = Provider
        fields = ["name", "display_name", "type", "base_url", "models", "enabled", "priority", "api_key_masked"]
        read_only_fields = fields


class ModelSelectionSerializer(serializers.Serializer):
    models = model_names(allow_empty=True)


class ProviderModelSerializer(serializers.Serializer):
    """One entry of `GET /v1/providers/{name}/models` (documentation only)."""

    id = serializers.CharField()
    object = serializers.CharField()
    owned_by = serializers.CharField()
    selected = serializers.BooleanField()


class ProviderModelListSerializer(serializers.Serializer):
    object = serializers.CharField()
    data = ProviderModelSerializer(many=True)


class ProviderListingResponseSerializer(serializers.Serializer):
    providers = ProviderListingSerializer(many=True)


class ConnectionCheckSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)


class OverrideSerializer(serializers.ModelSerializer):
    """A tenant admin's overrides are its own tenant's (`tenant` is set to it);
    a global admin may name any tenant, or none for every tenant's user of that name."""

    tenant = TenantField(required=False, allow_null=True)
    service_name = serializers.CharField(max_length=100, required=False, allow_null=True, allow_blank=True)
    provider = serializers.SlugRelatedField(slug_field="name", queryset=Provider.objects.all())
    model = serializers.RegexField(MODEL_NAME_RE)

    class Meta:
        model = Override
        fields = ["id", "tenant", "user_id", "service_name", "provider", "model", "created_at"]
        # (tenant, user_id, service_name) uniqueness is checked in validate(): 409,
        # and an empty service means "all services" (NULL).
        validators = []

    def validate_service_name(self, value: str | None) -> str | None:
        return value or None

    def validate(self, attrs: dict) -> dict:
        scope = scope_of(self)
        if scope is not None:
            attrs["tenant"] = scope
        tenant = attrs.get("tenant", getattr(self.instance, "tenant", None))
        user_id = attrs.get("user_id", getattr(self.instance, "user_id", None))
        service = attrs.get("service_name", getattr(self.instance, "service_name", None))
        taken = Override.objects.filter(tenant=tenant, user_id=user_id, service_name=service)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise conflict(f"An override for user {user_id!r} and service {service!r} already exists.", "user_id")
        return attrs
