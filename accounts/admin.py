"""Tenants, API users and keys in the admin (django-unfold's ModelAdmin).

A key's plaintext is shown once, on the page that answers its creation or
rotation, and never stored. What each tenant, user and key has spent lives a
layer up: `usage/admin.py` registers these classes again with their spend
columns (usage may read accounts, not the other way round).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import ModelAdmin
from unfold.decorators import display

from accounts.models import DISPLAY_PREFIX_LEN, ApiKey, ApiUser, Tenant, hash_key, new_raw_key

LIMIT_FIELDS = ("token_quota", "budget_usd", "quota_period", "rpm", "tpm")
# Status words and the colour of the label each is shown in.
STATUS_LABELS = {
    "active": "success",
    "enabled": "success",
    "expired": "warning",
    "disabled": "danger",
    "revoked": "danger",
}


@admin.register(Tenant)
class TenantAdmin(ModelAdmin):
    list_display = ("name", "status", "token_quota", "budget_usd", "quota_period", "rpm", "tpm", "created_at")
    list_filter = ("is_active", "quota_period")
    search_fields = ("name",)
    fieldsets = ((None, {"fields": ("name", "is_active")}), ("Limits", {"fields": LIMIT_FIELDS}))

    @display(description="status", label=STATUS_LABELS, ordering="is_active")
    def status(self, tenant: Tenant) -> str:
        return "active" if tenant.is_active else "disabled"


@admin.register(ApiUser)
class ApiUserAdmin(ModelAdmin):
    list_display = ("username", "tenant", "status", "token_quota", "budget_usd", "rpm", "created_at")
    list_filter = ("is_active", "tenant")
    list_select_related = ("tenant",)
    search_fields = ("username", "email", "tenant__name")
    autocomplete_fields = ("tenant",)
    fieldsets = ((None, {"fields": ("tenant", "username", "email", "is_active")}), ("Limits", {"fields": LIMIT_FIELDS}))

    @display(description="status", label=STATUS_LABELS, ordering="is_active")
    def status(self, user: ApiUser) -> str:
        return "active" if user.is_active else "disabled"


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    list_display = ("prefix_display", "name", "tenant", "user", "is_admin", "status", "expires_at", "last_used_at")
    list_filter = ("is_active", "is_admin", "tenant")
    # The user column shows "username (tenant)": its tenant too, or one query per row.
    list_select_related = ("tenant", "user__tenant")
    search_fields = ("prefix", "name", "user__username", "tenant__name")
    autocomplete_fields = ("user",)
    readonly_fields = ("prefix", "tenant", "is_active", "revoked_at", "last_used_at", "created_at")
    actions = ("revoke_keys", "rotate_keys")
    fieldsets = (
        (None, {"fields": ("prefix", "user", "tenant", "name", "is_admin", "allowed_models", "expires_at")}),
        ("Limits", {"fields": (*LIMIT_FIELDS, "max_parallel")}),
        ("State", {"fields": ("is_active", "revoked_at", "last_used_at", "created_at")}),
    )

    @display(description="key", ordering="prefix")
    def prefix_display(self, key: ApiKey) -> str:
        return f"{key.prefix}…"

    @display(description="status", label=STATUS_LABELS)
    def status(self, key: ApiKey) -> str:
        if not key.is_active:
            return "revoked"
        return "active" if key.expires_at is None or key.is_usable() else "expired"

    def get_readonly_fields(self, request, obj=None):
        # The owner of a key is fixed once it exists.
        return (*self.readonly_fields, "user") if obj else self.readonly_fields

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if not change:
            raw = new_raw_key()
            obj.key_hash = hash_key(raw)
            obj.prefix = raw[:DISPLAY_PREFIX_LEN]
            obj.tenant_id = obj.user.tenant_id
            request._new_api_key = raw
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj: ApiKey, post_url_continue=None):
        raw = getattr(request, "_new_api_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        return self._show_plaintext(request, "API key created", [(obj, raw)])

    def _show_plaintext(self, request, heading: str, keys: list[tuple[ApiKey, str]]) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": heading,
            "heading": heading,
            "keys": keys,
            "back_url": reverse("admin:accounts_apikey_changelist"),
        }
        response = TemplateResponse(request, "admin/accounts/apikey/plaintext.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset) -> None:
        keys = list(queryset.filter(is_active=True))
        for key in keys:
            key.revoke()
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)

    @admin.action(description="Rotate selected keys (new secret, old one stops working)")
    def rotate_keys(self, request, queryset):
        rotated = [(key, key.rotate()) for key in queryset.select_related("tenant", "user")]
        return self._show_plaintext(request, "API keys rotated", rotated)
