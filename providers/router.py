"""Trying candidates: retries with backoff on the same provider, then
failover to the next, skipping providers whose circuit is open. The only
place in the gateway that retries."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from django.conf import settings

from core import metrics
from core.errors import GatewayError
from providers import limits
from providers.adapters import ClientEndpoint, Reply, UpstreamError, adapter_for
from providers.circuit import CircuitConfig, circuits
from providers.registry import Target

MAX_BACKOFF = 4.0


class ClientFault(Exception):
    """The upstream refused the request as the client's fault (400/413/422): pass it through."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class Attempt:
    """Where the request went; updated as the router tries candidates (for usage records)."""

    target: Target | None = None
    attempts: int = 0
    provider_checks: list = field(default_factory=list)  # provider RPM/TPM counters taken
    upstream_seconds: float = 0.0  # time spent in upstream calls, all attempts


@dataclass
class Streamed:
    """A stream in batches of chunks (see Adapter.stream): the first batch, None
    when the upstream sent no chunk at all, and an iterator over the rest."""

    first: list[bytes] | None
    rest: AsyncIterator[list[bytes]]


def backoff(retry: int, retry_after: float | None) -> float:
    base = settings.RETRY_BACKOFF_BASE
    if retry_after is not None:
        return min(retry_after, MAX_BACKOFF)
    return min(MAX_BACKOFF, base * 2**retry + random.uniform(0, base))


async def _once(target: Target, endpoint: ClientEndpoint, body: dict, stream: bool) -> Reply | Streamed:
    adapter = adapter_for(target.upstream)
    if not stream:
        return await adapter.request(endpoint, body, target.model)
    chunks = adapter.stream(endpoint, body, target.model)
    try:
        # Wait for the first chunk here, so a failure before any byte reaches
        # the client can still be retried or failed over.
        first = await anext(chunks, None)
    except BaseException:
        await chunks.aclose()
        raise
    return Streamed(first, chunks)


async def route(
    candidates: list[Target],
    endpoint: ClientEndpoint,
    body: dict,
    *,
    stream: bool,
    attempt: Attempt,
    circuit: dict | None,
) -> Reply | Streamed:
    config = CircuitConfig.from_settings(circuit)
    last_error: UpstreamError | None = None
    tried = limited = False
    for target in candidates:
        name = target.upstream.name
        if adapter_for(target.upstream).wire not in endpoint.upstream:
            continue  # the provider's wire format has no path for this endpoint
        for retry in range(target.upstream.max_retries + 1):
            if not await circuits.allow(name, config):
                break
            taken = await limits.try_provider(target.upstream)
            if taken is None:
                limited = True  # this provider's own RPM/TPM: try the next one
                break
            attempt.provider_checks = taken
            tried = True
            attempt.target = target
            attempt.attempts += 1
            started = time.perf_counter()
            try:
                result = await _once(target, endpoint, body, stream)
            except UpstreamError as error:
                attempt.upstream_seconds += time.perf_counter() - started
                if error.client_fault:
                    await circuits.record_success(name)  # the upstream is fine; the request is not
                    raise ClientFault(error) from None
                last_error = error
                await circuits.record_failure(name, config)
                if not error.retryable or retry == target.upstream.max_retries:
                    break
                await asyncio.sleep(backoff(retry, error.retry_after))
                continue
            attempt.upstream_seconds += time.perf_counter() - started
            await circuits.record_success(name)
            return result
    if not tried and limited:
        metrics.refused("provider", "limit")
        raise GatewayError(
            "rate_limited", "Every provider for this model is at its rate limit.",
            headers={"Retry-After": "1"}, extra={"retry_after": 1},
        )  # fmt: skip
    if not tried:
        raise GatewayError("provider_unavailable", "Every provider for this model is disabled or its circuit is open.")
    if last_error.kind == "timeout":
        raise GatewayError("upstream_timeout", "The upstream provider did not answer in time.")
    raise GatewayError("upstream_error", f"All upstream providers failed; last error: {last_error.describe()}.")
