"""What one client call did: who made it, where it went, what it used, how it
ended. Its response headers and `_proxy_info` come from here, and `finish()`
settles its quota reservation and records its usage, once.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from django.utils import timezone

from accounts import keycache
from core import metrics
from gateway import response_cache
from gateway.endpoints import Endpoint
from providers.adapters import Usage
from providers.pricing import cost_of, price_of
from providers.router import Attempt
from usage import limits, recorder

DISCONNECTED_STATUS = 499  # nginx's "client closed request"
SESSION_HEADERS = (b"x-session-id", b"x-claude-code-session-id")
MAX_SESSION_ID = 200


class Call:
    """What one client call did, for its response headers and its usage record."""

    def __init__(self, endpoint: Endpoint, model_id: str | None, scope: dict) -> None:
        self.endpoint = endpoint
        self.model_id = model_id
        self.headers = dict(scope.get("headers") or ())
        # Unique, not secret: Python's PRNG (reseeded in forked children) costs no syscall.
        self.request_id = f"req_{random.getrandbits(128):032x}"
        self.created_at = timezone.now()
        self.started = time.perf_counter()
        self.key: keycache.KeyInfo | None = None
        self.attempt = Attempt()
        self.requested_model = ""
        self.username = ""
        self.service = ""
        self.task_type = ""
        self.stream = False
        self.status = 0
        self.error_code = ""
        self.usage: Usage | None = None
        self.prompt_estimate = 0
        self.streamed_chunks = 0
        self.disconnected = False
        self.prices: dict = {}
        self.admission: limits.Admission | None = None
        self.finished = False
        self.response_started = False  # the status line went out: an error can only end a stream in-band
        self.cached: response_cache.Entry | None = None  # the cache entry that answered
        self.store_stream: tuple[str, dict] | None = None  # (cache key, config) to store a stream under
        self.session_id = self.agent_session()

    def agent_session(self) -> str:
        """The agent session this call belongs to, from its headers (a Responses
        request's prompt_cache_key is set by its handler)."""
        for name in SESSION_HEADERS:
            value = self.headers.get(name)
            if value:
                return value.decode("latin-1")[:MAX_SESSION_ID]
        return ""

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    @property
    def provider(self) -> str:
        if self.cached is not None:
            return self.cached.provider
        return self.attempt.target.upstream.name if self.attempt.target else ""

    @property
    def upstream_model(self) -> str:
        if self.cached is not None:
            return self.cached.model
        return self.attempt.target.model if self.attempt.target else ""

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def client_disconnected(self) -> None:
        self.disconnected = True
        self.status = DISCONNECTED_STATUS
        self.error_code = "client_disconnected"

    def proxy_info(self) -> dict:
        return {
            "provider": self.provider,
            "attempt_number": self.attempt.attempts,
            "response_time": round(self.elapsed(), 4),
            "request_id": self.request_id,
        }

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-request-id", self.request_id.encode()),
            (b"x-gateway-provider", (self.provider or "gateway").encode()),
            (b"x-cache", b"HIT" if self.cached is not None else b"MISS"),
        ]
        if self.admission is not None:
            headers += self.admission.headers
        return headers

    async def finish(self) -> None:
        """Settle the reservation and record usage, once, before the response's last byte."""
        if self.finished or self.key is None:
            return
        self.finished = True
        fields = self.usage_fields()
        metrics.observe(fields, self.attempt.upstream_seconds)
        # A cached answer used no upstream tokens: it is recorded with its tokens, but not charged.
        tokens = 0 if fields["cached"] else fields["input_tokens"] + fields["output_tokens"]
        nano_usd = limits.to_nano(fields["cost_usd"])
        await recorder.submit(fields, self.admission, tokens, nano_usd, self.attempt.provider_checks)

    def billed_usage(self) -> tuple[Usage, bool]:
        """The usage to bill and whether it is an estimate.

        No usage reported, yet the upstream worked (the client left, or it does
        not report usage): bill what we can see, flagged. A failed call bills nothing."""
        if self.usage is not None:
            return self.usage, False
        if self.attempt.target is not None and (self.status == 200 or self.disconnected):
            return Usage(self.prompt_estimate, self.streamed_chunks), True
        return Usage(), False

    def cost(self, usage: Usage) -> tuple[Decimal, bool]:
        """(USD cost, whether the model has a price). A cached answer costs nothing."""
        model = self.upstream_model or self.requested_model
        price = price_of(model, self.prices) if model else None
        if self.cached is not None or price is None:
            return Decimal(0), price is not None or not model
        return cost_of(price, usage.input_tokens, usage.output_tokens, usage.cached_tokens), True

    def usage_fields(self) -> dict:
        usage, estimated = self.billed_usage()
        cost, priced = self.cost(usage)
        key = self.key
        return {
            "created_at": self.created_at,
            "request_id": self.request_id,
            "tenant_id": key.tenant_id,
            "user_id": key.user_id,
            "key_id": key.id,
            "username": self.username or key.username,
            "service": self.service,
            "task_type": self.task_type,
            "endpoint": self.endpoint.name,
            "requested_model": self.requested_model,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "session_id": self.session_id,
            "cost_usd": cost,
            "priced": priced,
            "latency_ms": int(self.elapsed() * 1000),
            "status": self.status or 500,
            "error_code": self.error_code,
            "cached": self.cached is not None,
            "stream": self.stream,
            "attempts": self.attempt.attempts,
            "disconnected": self.disconnected,
            "estimated": estimated,
        }
