"""In-process snapshot of routing data (providers, aliases, overrides, prices,
config), so the /v1 path reads no database on a warm request.

Changes bump a generation counter in the shared cache; each process checks it
at most once per REFRESH_SECONDS and rebuilds its snapshot when it moved.
"""

from __future__ import annotations

from django.core.cache import cache

GENERATION_KEY = "gw:routing:generation"


def invalidate() -> None:
    """Call after changing providers, aliases, overrides, prices or config
    (signals do it for model saves; bulk updates must call it themselves)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        cache.set(GENERATION_KEY, 1, timeout=None)
