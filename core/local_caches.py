"""What each process keeps in memory between requests, in one list.

Every module-level cache (key lookups, the routing snapshot, circuit views,
in-memory counters, the response cache) registers how to empty itself here
when it is created. `clear_all()` empties them all: the tests call it between
tests, where the database is reset under the process without the signals that
normally tell it. Nothing on the request path calls it.
"""

from __future__ import annotations

from collections.abc import Callable

_clears: list[Callable[[], None]] = []


def register(clear: Callable[[], None]) -> None:
    """Add a cache's way of emptying itself (once, at import)."""
    _clears.append(clear)


def clear_all() -> None:
    for clear in _clears:
        clear()
