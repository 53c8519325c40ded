from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.widgets import UnfoldAdminPasswordWidget, UnfoldAdminURLInputWidget, UnfoldBooleanSwitchWidget

from accounts.admin import STATUS_LABELS
from providers import model_listing
from providers.models import ModelAlias, Override, Price, Provider


class ProviderForm(forms.ModelForm):
    """The stored key is never rendered: the field starts empty, and an empty
    submit keeps the key that is there. Every other rule is the model field's."""

    # A URL typed without a scheme is https; the rules are the model field's.
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,
        help_text=Provider._meta.get_field("base_url").help_text,
    )
    api_key = forms.CharField(
        required=False,
        max_length=500,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored key (or use the environment variable below).",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored key", widget=UnfoldBooleanSwitchWidget)

    class Meta:
        model = Provider
        fields = "__all__"

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("clear_api_key"):
            cleaned["api_key"] = ""
        elif not cleaned.get("api_key") and self.instance.pk:
            cleaned["api_key"] = self.instance.api_key
        return cleaned


@admin.register(Provider)
class ProviderAdmin(ModelAdmin):
    form = ProviderForm
    list_display = ("name", "type", "status", "priority", "key", "models_count", "from_config", "updated_at")
    list_filter = ("type", "is_enabled", "from_config")
    search_fields = ("name", "display_name")
    readonly_fields = ("available_models", "from_config", "created_at", "updated_at")
    actions = ("test_connection",)
    fieldsets = (
        (None, {"fields": ("name", "display_name", "type", "base_url", "is_enabled", "priority")}),
        ("Key", {"fields": ("api_key", "clear_api_key", "api_key_env")}),
        ("Models", {"fields": ("models", "available_models", "responses")}),
        ("Limits", {"fields": ("rate_limit_rpm", "rate_limit_tpm", "timeout", "max_retries", "custom_headers")}),
        ("State", {"fields": ("from_config", "created_at", "updated_at")}),
    )

    @display(description="status", ordering="is_enabled", label=STATUS_LABELS)
    def status(self, provider: Provider) -> str:
        return "enabled" if provider.is_enabled else "disabled"

    @display(description="key")
    def key(self, provider: Provider) -> str:
        return provider.masked_api_key or "—"

    @display(description="models")
    def models_count(self, provider: Provider) -> int:
        return len(provider.models or [])

    @admin.action(description="Test connection (asks the upstream for its model list)")
    def test_connection(self, request, queryset) -> None:
        for provider in queryset:
            success, error = model_listing.check_provider(provider)
            if success:
                self.message_user(request, f"Connection to {provider.name} OK.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    model_listing.scrub(f"Connection to {provider.name} failed: {error}", provider),
                    messages.ERROR,
                )


@admin.register(ModelAlias)
class ModelAliasAdmin(ModelAdmin):
    list_display = ("name", "provider", "model", "position")
    list_filter = ("provider",)
    list_select_related = ("provider",)
    search_fields = ("name", "model")


@admin.register(Override)
class OverrideAdmin(ModelAdmin):
    list_display = ("user_id", "service", "tenant", "provider", "model", "created_at")
    list_filter = ("provider", "tenant")
    list_select_related = ("provider", "tenant")
    search_fields = ("user_id", "service_name", "model")

    @display(description="service", ordering="service_name")
    def service(self, override: Override) -> str:
        return override.service_name or "(all services)"


@admin.register(Price)
class PriceAdmin(ModelAdmin):
    list_display = ("model", "input", "output", "cached_input")
    search_fields = ("model",)
