"""The settings sections of the applied config (limits, cache, circuit_breaker,
default_model and the advanced sections), read over their defaults.

`providers.config` writes them (ConfigState, from the YAML file); the routing
snapshot (`providers.registry`) and the config status read them here.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings

from providers.models import ConfigState

STATE_PK = 1

ADVANCED_SECTIONS = (
    "condensation",
    "context_window_fallbacks",
    "telemetry",
    "chaos_engineering",
    "logging",
    "guardrails",
    "templates",
)
# Sections stored in ConfigState (the rest become rows: providers, aliases, prices, overrides).
STATE_SECTIONS = ("limits", "cache", "circuit_breaker", "default_model", *ADVANCED_SECTIONS)

DEFAULTS: dict[str, Any] = {
    "limits": {
        "max_concurrent_requests": 500,
        # The contract's example value: every key has an RPM (and so rate-limit
        # headers) unless its own rpm or this says otherwise; null turns it off.
        "default_key_rpm": 600,
        "default_key_tpm": None,
        # Completion tokens reserved against quotas when a request sets no max_tokens.
        "default_max_tokens": 1024,
        # None: settings.MAX_REQUEST_BYTES (filled in by runtime_settings()).
        "max_request_bytes": None,
    },
    # Off unless configured: an exact-match cache would hand identical answers to
    # clients that sample on purpose (as LiteLLM and Portkey, it is opt-in).
    "cache": {"enabled": False, "ttl": 3600, "max_entries": 10000},
    "circuit_breaker": {"failure_threshold": 5, "recovery_timeout": 60, "half_open_max_calls": 3},
    "default_model": None,
    **{name: {"enabled": False} for name in ADVANCED_SECTIONS},
}


def runtime_settings() -> dict:
    """The applied config's settings over DEFAULTS: limits, cache, circuit_breaker,
    default_model and each advanced section (always with an `enabled` flag)."""
    state = ConfigState.objects.filter(pk=STATE_PK).values_list("data", flat=True).first() or {}
    merged = copy.deepcopy(DEFAULTS)
    for name, value in state.items():
        if isinstance(merged.get(name), dict) and isinstance(value, dict):
            merged[name].update(value)
        elif name in merged and value is not None:
            merged[name] = value
    if merged["limits"]["max_request_bytes"] is None:
        merged["limits"]["max_request_bytes"] = settings.MAX_REQUEST_BYTES
    return merged
