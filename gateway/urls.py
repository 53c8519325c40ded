from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter, SimpleRouter

from accounts import api as accounts_api
from accounts import compat_api
from alerts import api as alerts_api
from gateway import views
from providers import api as providers_api
from usage import api as usage_api

# The contract writes action paths without a slash (`/keys/{id}/revoke`); accept both.
router = DefaultRouter()
router.trailing_slash = "/?"
router.register("tenants", accounts_api.TenantViewSet, basename="tenant")
router.register("users", accounts_api.ApiUserViewSet, basename="apiuser")
router.register("keys", accounts_api.ApiKeyViewSet, basename="apikey")
router.register("providers", providers_api.ProviderViewSet, basename="provider")
router.register("overrides", providers_api.OverrideViewSet, basename="override")

# Alert rules (by name) and alerts, under /v1 as CONTRACT section 10 has them.
alerts_router = SimpleRouter()
alerts_router.trailing_slash = "/?"
alerts_router.register("rules", alerts_api.AlertRuleViewSet, basename="alertrule")
alerts_router.register("alerts", alerts_api.AlertViewSet, basename="alert")

urlpatterns = [
    # Seed-compatible admin paths come before the Django admin's catch-all.
    path("admin/gen_key", compat_api.gen_key),
    path("admin/list_users", compat_api.list_users),
    path("admin/forbid_key", compat_api.forbid_key),
    path("admin/list_costs", usage_api.list_costs),
    path("admin/", admin.site.urls),
    # Seed-compatible provider and config paths (ASGI routes /v1/providers and /v1/config here).
    path("providers", providers_api.provider_listing),
    path("v1/providers/<str:name>/models", providers_api.provider_models),
    # Before the model detail, whose `<path:model_id>` (ids may hold ":" and "/") also matches "refresh".
    path("v1/providers/<str:name>/models/refresh", providers_api.refresh_models),
    path("v1/providers/<str:name>/models/<path:model_id>", providers_api.provider_model),
    path("v1/providers/<str:name>/model_selection", providers_api.model_selection),
    path("v1/config/reload", providers_api.config_reload),
    path("v1/config/status", providers_api.config_status),
    path("v1/", include(alerts_router.urls)),
    path("health", views.health),
    path("api/v1/health", views.api_health),
    path("api/v1/health/providers", views.providers_health),
    path("metrics", views.metrics_json),
    path("metrics/prometheus", views.prometheus),
    re_path(r"^api/v1/usage/summary/?$", usage_api.summary),
    re_path(r"^api/v1/usage/by-(?P<group>(?:provider|service|model|key|customer))/?$", usage_api.by_group),
    re_path(r"^api/v1/usage/timeseries/?$", usage_api.timeseries),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[AllowAny])),
    # The admin's CSS and JS, served by the gateway itself so one process is enough.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]

handler400 = views.handler400
handler403 = views.handler403
handler404 = views.handler404
handler500 = views.handler500
