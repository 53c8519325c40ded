"""Gateway settings: every value comes from the environment, with a default that
works on a laptop (SQLite, in-process cache). Read top to bottom."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.urls import reverse_lazy

from core.env import database_from_url, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-secret-key-change-me-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",  # makes `runserver` serve ASGI
    "unfold",  # the admin's theme and dashboard; before django.contrib.admin, whose templates it overrides
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc files, served locally
    "channels",
    "accounts",
    "providers",
    "usage",
    "alerts",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "gateway.middleware.JsonErrorMiddleware",
]

ROOT_URLCONF = "gateway.urls"
ASGI_APPLICATION = "gateway.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
    # Per process, so parallel test runs do not drop each other's database.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL and IMMEDIATE transactions let concurrent requests write
                # without "database is locked" errors on a laptop.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so a test server thread or subprocess sees the test data.
            # Per process, so parallel test runs do not share one.
            "TEST": {
                "NAME": env_str("SQLITE_TEST_PATH", f"{tempfile.gettempdir()}/gateway-test-{os.getpid()}.sqlite3")
            },
        }
    }
# Reuse connections (the /v1 path reaches the database from a worker thread),
# checked before reuse so a restarted database costs one failed ping, not an error.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, and the state every process shares (with Redis) -----------------
REDIS_URL = env_str("REDIS_URL")
# Seconds any Redis client may wait to connect, or for a reply: a Redis that
# hangs fails the calls waiting on it instead of holding them forever.
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 5.0, positive=True)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "gw"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_TIMEOUT": REDIS_TIMEOUT,
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "gateway",
            "OPTIONS": {"MAX_ENTRIES": env_int("LOCAL_CACHE_MAX_ENTRIES", 10000)},
        }
    }

# --- Gateway ----------------------------------------------------------------
GATEWAY_ADMIN_KEY = env_str("GATEWAY_ADMIN_KEY")
GATEWAY_CONFIG = env_str("GATEWAY_CONFIG", str(BASE_DIR / "gateway.yaml"))
HOST = env_str("HOST", "127.0.0.1")
PORT = env_int("PORT", 8000)
# Request bodies over this many bytes get 413 request_too_large.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# Seconds between a process's checks that its routing snapshot is current.
ROUTING_REFRESH_SECONDS = env_float("ROUTING_REFRESH_SECONDS", 1.0)
# Seconds; retry n waits about base * 2**n (plus jitter), at most 4 s.
RETRY_BACKOFF_BASE = env_float("RETRY_BACKOFF_BASE", 0.25)
# Seconds between alert rule evaluations inside the server; 0 turns that off (cron: manage.py evaluate_alerts).
ALERT_EVALUATION_SECONDS = env_float("ALERT_EVALUATION_SECONDS", 60.0)

# --- Auth, REST API and its schema ------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsGatewayAdmin"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.errors.drf_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.ManagementRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LLM Gateway management API",
    "DESCRIPTION": "Tenants, users, keys, providers, usage, health and metrics. Clients use /v1 (OpenAI-compatible).",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ loads its JS and CSS from this gateway (static/), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge: it would send the schema's address to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Choice sets that share field names (`status`) get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "GatewayStatusEnum": "gateway.health.GATEWAY_STATUSES",
        "ProviderStatusEnum": "gateway.health.PROVIDER_STATUSES",
        "UpDownEnum": "gateway.views.UP_DOWN",
    },
}

# Management API: requests per caller and endpoint (django-ratelimit); empty = no limit.
MANAGEMENT_RATE_LIMIT = env_str("MANAGEMENT_RATE_LIMIT", "600/m")
RATELIMIT_USE_CACHE = "default"


# --- Admin: django-unfold, the operator's home -------------------------------
def _admin_entry(title: str, icon: str, model: str, view: str = "changelist") -> dict:
    """A sidebar link to an admin page of `model` ("app.model"), shown to staff who may view it."""
    app, name = model.split(".")
    return {
        "title": title,
        "icon": icon,  # a Material Symbols name (the font ships with unfold)
        "link": reverse_lazy(f"admin:{app}_{name}_{view}"),
        "permission": lambda request: request.user.has_perm(f"{app}.view_{name}"),
    }


UNFOLD = {
    "SITE_TITLE": "LLM Gateway",
    "SITE_HEADER": "LLM Gateway",
    "SITE_SUBHEADER": "Operations",
    "SITE_SYMBOL": "hub",
    # The gateway has no home page of its own: "view site" leads to the API docs.
    "SITE_URL": "/api/docs/",
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "gateway.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "navigation": [
            {
                "title": "Overview",
                "items": [{"title": "Dashboard", "icon": "dashboard", "link": reverse_lazy("admin:index")}],
            },
            {
                "title": "Accounts",
                "separator": True,
                "items": [
                    _admin_entry("Tenants", "apartment", "accounts.tenant"),
                    _admin_entry("API users", "group", "accounts.apiuser"),
                    _admin_entry("API keys", "key", "accounts.apikey"),
                ],
            },
            {
                "title": "Routing",
                "separator": True,
                "items": [
                    _admin_entry("Providers", "dns", "providers.provider"),
                    _admin_entry("Model aliases", "alt_route", "providers.modelalias"),
                    _admin_entry("Overrides", "call_split", "providers.override"),
                    _admin_entry("Prices", "sell", "providers.price"),
                ],
            },
            {
                "title": "Usage",
                "separator": True,
                "items": [
                    _admin_entry("Usage records", "receipt_long", "usage.usagerecord"),
                    _admin_entry("Per-day chart", "bar_chart", "usage.usagerecord", view="chart"),
                ],
            },
            {
                "title": "Alerts",
                "separator": True,
                "items": [
                    _admin_entry("Alert rules", "rule", "alerts.alertrule"),
                    _admin_entry("Alerts", "notifications", "alerts.alert"),
                ],
            },
        ],
    },
}

# --- Internationalization and static files ----------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request errors are logged once, by our JSON error handling.
        "django.request": {"level": "CRITICAL"},
    },
}
