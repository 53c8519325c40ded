"""Provider checks run from management views (not the request path): plain
synchronous HTTP, so a sync Django view can call them directly."""

from __future__ import annotations

import httpx

from providers.adapters import ADAPTERS
from providers.adapters.base import model_ids
from providers.adapters.echo import MODELS as ECHO_MODELS
from providers.models import Provider, ProviderType, mask_secret
from providers.registry import upstream_from


def scrub(text: str, provider: Provider) -> str:
    """Remove the provider's key from a message before anyone sees it."""
    key = provider.resolved_api_key()
    return text.replace(key, mask_secret(key)) if key else text


def fetch_upstream_models(provider: Provider) -> list[str]:
    """The model ids the upstream lists. Raises RuntimeError with a safe message."""
    if provider.type == ProviderType.ECHO:
        return list(ECHO_MODELS)
    # The adapter's own headers and URL, so the check calls the upstream exactly as requests do.
    adapter = ADAPTERS[provider.type](upstream_from(provider))
    try:
        response = httpx.get(adapter.models_url(), headers=adapter.headers(), timeout=min(provider.timeout, 15))
    except httpx.HTTPError as exc:
        raise RuntimeError(scrub(f"{type(exc).__name__}: {exc}", provider)) from None
    if response.status_code != 200:
        raise RuntimeError(f"upstream answered HTTP {response.status_code}")
    try:
        return model_ids(response.json())
    except (ValueError, AttributeError):
        raise RuntimeError("upstream model list is not JSON") from None


def check_provider(provider: Provider) -> tuple[bool, str | None]:
    """(success, error message) for a live call to the upstream's model list."""
    try:
        fetch_upstream_models(provider)
    except RuntimeError as exc:
        return False, str(exc)
    return True, None
