"""Provider checks run from management views (not the request path): plain
synchronous HTTP, so a sync Django view can call them directly."""

from __future__ import annotations

import httpx

from providers.models import Provider, ProviderType, mask_secret

ANTHROPIC_VERSION = "2023-06-01"
ECHO_MODELS = ["echo"]


def _auth_headers(provider: Provider) -> dict[str, str]:
    key = provider.resolved_api_key()
    headers = dict(provider.custom_headers or {})
    if provider.type == ProviderType.ANTHROPIC:
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _models_url(provider: Provider) -> str:
    base = provider.resolved_base_url()
    return f"{base}/v1/models" if provider.type == ProviderType.ANTHROPIC else f"{base}/models"


def scrub(text: str, provider: Provider) -> str:
    """Remove the provider's key from a message before anyone sees it."""
    key = provider.resolved_api_key()
    return text.replace(key, mask_secret(key)) if key else text


def fetch_upstream_models(provider: Provider) -> list[str]:
    """The model ids the upstream lists. Raises RuntimeError with a safe message."""
    if provider.type == ProviderType.ECHO:
        return list(ECHO_MODELS)
    try:
        response = httpx.get(_models_url(provider), headers=_auth_headers(provider), timeout=min(provider.timeout, 15))
    except httpx.HTTPError as exc:
        raise RuntimeError(scrub(f"{type(exc).__name__}: {exc}", provider)) from None
    if response.status_code != 200:
        raise RuntimeError(f"upstream answered HTTP {response.status_code}")
    try:
        data = response.json().get("data", [])
        return [item["id"] for item in data if isinstance(item, dict) and "id" in item]
    except (ValueError, AttributeError):
        raise RuntimeError("upstream model list is not JSON") from None


def check_provider(provider: Provider) -> tuple[bool, str | None]:
    """(success, error message) for a live call to the upstream's model list."""
    try:
        fetch_upstream_models(provider)
    except RuntimeError as exc:
        return False, str(exc)
    return True, None
