"""Upstream providers, and what routes a request to them: model aliases,
per-user overrides, and the price table used for cost.

A provider field's rules (range, format) are declared once, on its model field
below; the YAML loader (providers.config), the management API
(providers.serializers) and the admin form all check against them.
"""

from __future__ import annotations

import math
import os
import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, URLValidator
from django.db import models

from accounts.models import Tenant
from core.names import MODEL_NAME_RE, name_validator

INT32_MAX = 2**31 - 1
MAX_RETRIES = 10
MAX_MODELS = 10_000
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")

_http_url = URLValidator(schemes=["http", "https"], message="Enter an http:// or https:// URL.")
env_name = RegexValidator(ENV_NAME_RE, "Enter an environment variable name (letters, digits and '_').")


def validate_http_url(value) -> None:
    # A function, not the URLValidator itself: DRF drops URLValidator instances
    # from a model's URLField (its own URLField checks any scheme).
    _http_url(value)


def validate_model_names(value) -> None:
    if not isinstance(value, list):
        raise ValidationError("Enter a list of model names.")
    if len(value) > MAX_MODELS:
        raise ValidationError(f"Enter at most {MAX_MODELS} model names.")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not MODEL_NAME_RE.match(item):
            raise ValidationError(f"Item {index} is not a model name (1-100 characters [A-Za-z0-9._:/-]).")


def validate_headers(value) -> None:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationError("Map header names to string values.")


def validate_timeout(value) -> None:
    if not (isinstance(value, int | float) and value > 0 and not math.isinf(value)):
        raise ValidationError("Enter a number of seconds greater than 0.")


class ProviderType(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic"
    OLLAMA = "ollama", "Ollama"
    VLLM = "vllm", "vLLM"
    LLAMACPP = "llamacpp", "llama.cpp"
    GEMINI = "gemini", "Gemini"
    ECHO = "echo", "Echo (built-in, no network)"


DEFAULT_BASE_URLS = {
    ProviderType.OPENAI: "https://api.openai.com/v1",
    ProviderType.ANTHROPIC: "https://api.anthropic.com",
    ProviderType.OLLAMA: "http://127.0.0.1:11434/v1",
    ProviderType.VLLM: "http://127.0.0.1:8000/v1",
    ProviderType.LLAMACPP: "http://127.0.0.1:8080/v1",
    ProviderType.GEMINI: "https://generativelanguage.googleapis.com/v1beta/openai",
}


def mask_secret(secret: str) -> str:
    """`sk-...abcd`: enough to recognise a key, never enough to use it."""
    if not secret:
        return ""
    if len(secret) <= 8:
        return "..."
    return f"{secret[:3]}...{secret[-4:]}"


class Provider(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    display_name = models.CharField(max_length=200, blank=True)
    type = models.CharField(max_length=20, choices=ProviderType.choices)
    base_url = models.URLField(
        max_length=500, blank=True, validators=[validate_http_url], help_text="Empty: the type's default."
    )
    api_key = models.CharField(max_length=500, blank=True, help_text="Stored upstream key (or use api_key_env).")
    api_key_env = models.CharField(
        max_length=100, blank=True, validators=[env_name], help_text="Environment variable holding the key."
    )
    available_models = models.JSONField(default=list, blank=True, help_text="Last model list read from upstream.")
    is_enabled = models.BooleanField(default=True)
    responses = models.BooleanField(
        default=False,
        help_text="Speaks OpenAI's Responses API itself (/v1/responses is forwarded, not translated). "
        "Type openai always does.",
    )
    priority = models.IntegerField(
        default=0,
        validators=[MinValueValidator(-INT32_MAX - 1), MaxValueValidator(INT32_MAX)],
        help_text="Higher is tried first.",
    )
    rate_limit_rpm = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(INT32_MAX)]
    )
    rate_limit_tpm = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(INT32_MAX)]
    )
    timeout = models.FloatField(
        default=60.0, validators=[validate_timeout], help_text="Seconds to wait for the upstream."
    )
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(MAX_RETRIES)])
    custom_headers = models.JSONField(default=dict, blank=True, validators=[validate_headers])
    from_config = models.BooleanField(default=False, editable=False, help_text="Managed by the YAML config.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Last: from here on `models` in this class body is the field, not the module.
    models = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_model_names],
        help_text="Models this provider serves (the selection).",
    )

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def resolved_api_key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return self.api_key

    def resolved_base_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS.get(self.type, "")).rstrip("/")

    @property
    def masked_api_key(self) -> str:
        return mask_secret(self.resolved_api_key())


class ModelAlias(models.Model):
    """A public model name served by (provider, upstream model) pairs, tried in order."""

    name = models.CharField(max_length=100, validators=[name_validator])
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="aliases")
    model = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["name", "position"]
        verbose_name_plural = "model aliases"
        constraints = [
            models.UniqueConstraint(fields=["name", "provider", "model"], name="unique_alias_target"),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.provider.name}/{self.model}"


_GLOBAL = models.Q(tenant__isnull=True)
_ALL_SERVICES = models.Q(service_name__isnull=True)


class Override(models.Model):
    """Forces provider and model for a user (for one service, or all when service is empty).

    With a tenant, it applies to that tenant's requests only (a tenant admin's
    overrides are always its own tenant's); without one, to a user of that name
    in any tenant (global admins only). A tenant's own override wins.
    """

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="overrides",
        help_text="Only this tenant's requests; empty: any tenant's.",
    )  # fmt: skip
    user_id = models.CharField(max_length=100, db_index=True)
    service_name = models.CharField(max_length=100, null=True, blank=True)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="overrides")
    model = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "service_name"]
        # One override per (tenant or none, user, service or all); NULLs never
        # collide in a plain unique constraint, so each combination has its own.
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user_id", "service_name"], name="unique_tenant_override"),
            models.UniqueConstraint(
                fields=["tenant", "user_id"], condition=_ALL_SERVICES, name="unique_tenant_override_all_services"
            ),
            models.UniqueConstraint(fields=["user_id", "service_name"], condition=_GLOBAL, name="unique_override"),
            models.UniqueConstraint(
                fields=["user_id"], condition=_GLOBAL & _ALL_SERVICES, name="unique_override_all_services"
            ),
        ]

    def __str__(self) -> str:
        scope = f"{self.tenant.name}:" if self.tenant_id else ""
        return f"{scope}{self.user_id}/{self.service_name or '*'} → {self.provider.name}/{self.model}"


class Price(models.Model):
    """USD per 1M tokens for a model; overrides the built-in table."""

    model = models.CharField(max_length=100, unique=True)
    input = models.DecimalField(max_digits=12, decimal_places=6)
    output = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Reading the prompt cache."
    )
    cache_write = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="Writing the prompt cache."
    )

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class ConfigState(models.Model):
    """The YAML config last applied, so every process sees the same settings."""

    source = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict)
    loaded_at = models.DateTimeField(auto_now=True)


class RoutingGeneration(models.Model):
    """Bumped on every routing change; without Redis, processes poll it to
    know their routing snapshot is stale (one row, one indexed read a second)."""

    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "applied config"
