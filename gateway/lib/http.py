"""The per-process pooled HTTP connection pool for upstream calls.

Adapters talk to httpx's pooled transport directly: the client layer above it
(URL merging, cookie jar, auth and redirect handling) is work a proxy does not
need on every call. The pool is bound to the event loop it first ran on;
servers run one loop, tests several, so there is one pool per loop.
"""

from __future__ import annotations

import asyncio
import time
import weakref

import httpcore
import httpx

LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
SWEEP_SECONDS = 1.0

_pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class LeanConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, with the per-request bookkeeping made cheap.

    On every request (twice) httpcore checks each pooled connection for expiry,
    a poll() syscall per idle connection, and counts idle connections once per
    idle connection: O(n^2) in the pool's size, and the largest cost of a proxied
    request at 64 concurrent clients. Here only the connection about to be
    reused is checked (it must not have been closed by the server); the whole
    pool is swept for expired and surplus idle connections at most once a
    second. Same decisions otherwise: reuse an available connection for the
    origin, else open one, else replace an idle one.
    """

    _last_sweep = 0.0

    def _assign_requests_to_connections(self) -> list:
        closing: list = []
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            closing += self._sweep()
        else:
            self._connections = [c for c in self._connections if not c.is_closed()]
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            connection = self._reusable(origin, closing)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    idle = next((c for c in self._connections if c.is_idle()), None)
                    if idle is None:
                        continue  # stays queued until a connection frees up
                    self._connections.remove(idle)
                    closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing

    def _reusable(self, origin, closing: list):
        for connection in list(self._connections):
            if connection.can_handle_request(origin) and connection.is_available():
                if connection.has_expired():  # e.g. the server closed it while it sat idle
                    self._connections.remove(connection)
                    closing.append(connection)
                    continue
                return connection
        return None

    def _sweep(self) -> list:
        closing = []
        kept = []
        idle = 0
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)
                continue
            if connection.is_idle():
                idle += 1
                if idle > self._max_keepalive_connections:
                    closing.append(connection)
                    continue
            kept.append(connection)
        self._connections = kept
        return closing


class LeanTransport(httpx.AsyncHTTPTransport):
    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = LeanConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )


def transport() -> httpx.AsyncHTTPTransport:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        # Timeouts are set per request from each provider's config.
        pool = _pools[loop] = LeanTransport(LIMITS)
    return pool
