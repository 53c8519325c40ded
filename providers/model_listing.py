"""A provider's model listing, for management views (not the request path): the
adapter's own model listing, synchronous, so a sync Django view can call it."""

from __future__ import annotations

from providers.adapters import ADAPTERS, UpstreamError
from providers.models import Provider, mask_secret
from providers.registry import upstream_from


def scrub(text: str, provider: Provider) -> str:
    """Remove the provider's key from a message before anyone sees it."""
    key = provider.resolved_api_key()
    return text.replace(key, mask_secret(key)) if key else text


def fetch_upstream_models(provider: Provider) -> list[str]:
    """The model ids the upstream lists, asked the way requests call it (the
    adapter's URL and headers). Raises RuntimeError with a safe message."""
    adapter = ADAPTERS[provider.type](upstream_from(provider))
    try:
        return adapter.list_models()
    except UpstreamError as exc:
        raise RuntimeError(scrub(exc.message, provider)) from None


def check_provider(provider: Provider) -> tuple[bool, str | None]:
    """(success, error message) for a live call to the upstream's model list."""
    try:
        fetch_upstream_models(provider)
    except RuntimeError as exc:
        return False, str(exc)
    return True, None
