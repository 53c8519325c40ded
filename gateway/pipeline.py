"""The /v1 request pipeline: authenticate, validate, pick candidates, call
through the router, answer (JSON or SSE), and keep what the usage record needs.

Views in the Django sense, but on raw ASGI: they parse, call and serialize.
Routing, retries and provider formats live in `providers`.
"""

from __future__ import annotations

import logging
import random
import time
from decimal import Decimal

from django.utils import timezone

from accounts import keycache
from accounts.auth import key_from_headers
from core import jsonfast, metrics
from core.errors import GatewayError, error_json_bytes, internal_error, invalid_api_key
from gateway import response_cache
from gateway.asgi_io import JSON_HEADERS, send_bytes, send_error
from gateway.validation import VALIDATORS, parse_json_object
from providers import registry
from providers.adapters import Reply, UpstreamError, Usage
from providers.adapters.anthropic_format import (
    OpenAIToAnthropicStream,
    anthropic_to_openai_chat_request,
    openai_to_anthropic_response,
    sse_event,
)
from providers.circuit import circuits
from providers.pricing import cost_of, price_of
from providers.registry import Snapshot, Target
from providers.router import Attempt, ClientFault, Streamed, route
from usage import limits, recorder

logger = logging.getLogger("gateway.v1")

POST_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/images/generations": "images",
    "/v1/messages": "messages",
    "/api/v1/generate": "generate",
}
MODEL_PREFIX = "/v1/models/"
DISCONNECTED_STATUS = 499  # nginx's "client closed request"
DEFAULT_IMAGE_MODEL = "dall-e-2"
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def is_anthropic_path(path: str) -> bool:
    return path.rstrip("/") == "/v1/messages"


def resolve_route(method: str, path: str) -> tuple[str, str | None] | GatewayError:
    """(endpoint, model id) for a client path, or the error to answer."""
    path = path.rstrip("/") or "/"
    if path in POST_ROUTES:
        if method != "POST":
            return GatewayError("method_not_allowed", f"Use POST for {path}.")
        return POST_ROUTES[path], None
    if path == "/v1/models" or path.startswith(MODEL_PREFIX):
        if method != "GET":
            return GatewayError("method_not_allowed", f"Use GET for {path}.")
        model_id = path[len(MODEL_PREFIX) :] if path.startswith(MODEL_PREFIX) else None
        return ("model", model_id) if model_id else ("models", None)
    return GatewayError("not_found", f"Unknown path: {path}")


def estimate_tokens(text: str) -> int:
    """Cheap estimate (about 4 characters a token) for when the upstream reports none."""
    return max(1, len(text) // 4)


class Call:
    """What one client call did, for its response headers and its usage record."""

    def __init__(self, route: tuple[str, str | None], scope: dict) -> None:
        self.endpoint, self.model_id = route
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
        self.cached: response_cache.Entry | None = None  # the cache entry that answered
        self.store_stream: tuple[str, dict] | None = None  # (cache key, config) to store a stream under

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
            "endpoint": self.endpoint,
            "requested_model": self.requested_model,
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
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


class Pipeline:
    def __init__(self, call: Call, send) -> None:
        self.call = call
        self.send = send
        self.started_response = False
        self.anthropic = call.endpoint == "messages"

    # --- entry point ---------------------------------------------------------

    async def run(self, body: bytes) -> None:
        call = self.call
        try:
            call.key = await keycache.lookup(key_from_headers(lambda name: call.header(name.encode())))
            if call.key is None:
                raise invalid_api_key()
            handler = getattr(self, f"handle_{call.endpoint}")
            if call.endpoint in ("models", "model"):
                await handler()
            else:
                await handler(parse_json_object(body))
        except GatewayError as err:
            await self.fail(err)
        except ClientFault as fault:
            error = fault.error
            await self.fail(GatewayError("invalid_request", error.message, status=error.status))
        except Exception:
            logger.exception("Unhandled error in %s (request %s)", call.endpoint, call.request_id)
            await self.fail(internal_error())

    # --- endpoints -----------------------------------------------------------

    async def handle_chat(self, data: dict) -> None:
        await self.proxy("chat", data)

    async def handle_completions(self, data: dict) -> None:
        await self.proxy("completions", data)

    async def handle_embeddings(self, data: dict) -> None:
        await self.proxy("embeddings", data)

    async def handle_images(self, data: dict) -> None:
        VALIDATORS["images"](data)
        data.setdefault("model", DEFAULT_IMAGE_MODEL)
        await self.proxy("images", data, validated=True)

    async def proxy(self, endpoint: str, data: dict, validated: bool = False) -> None:
        """The OpenAI-format endpoints: same body in, same body out."""
        if not validated:
            VALIDATORS[endpoint](data)
        targets, snapshot = await self.targets(data["model"], data.get("user"))
        stream = bool(data.get("stream")) and endpoint in ("chat", "completions")
        self.call.stream = stream
        self.call.prompt_estimate = estimate_tokens(
            str(data.get("messages") or data.get("input") or data.get("prompt") or "")
        )
        await self.admit(snapshot, targets, data, endpoint)
        result = await self.call_upstream(snapshot, targets, endpoint, data, stream)
        if isinstance(result, Streamed):
            wants_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            await self.relay_openai_stream(result, wants_usage)
        else:
            self.call.usage = result.usage
            await self.respond_json(200, result.data)

    async def handle_messages(self, data: dict) -> None:
        """Anthropic Messages ingress: translated to chat, routed, translated back."""
        VALIDATORS["messages"](data)
        try:
            chat = anthropic_to_openai_chat_request(data)
        except ValueError as exc:
            raise GatewayError("invalid_request", str(exc)) from None
        targets, snapshot = await self.targets(data["model"], (data.get("metadata") or {}).get("user_id"))
        self.call.stream = bool(data.get("stream"))
        self.call.prompt_estimate = estimate_tokens(str(chat["messages"]))
        await self.admit(snapshot, targets, chat, "chat")
        result = await self.call_upstream(snapshot, targets, "chat", chat, self.call.stream)
        if isinstance(result, Streamed):
            await self.relay_anthropic_stream(result, data["model"])
        else:
            self.call.usage = result.usage
            await self.respond_json(200, openai_to_anthropic_response(result.data, data["model"]))

    async def handle_generate(self, data: dict) -> None:
        """The simple form: prompt in, text out, attributed to `user_id` and `service`."""
        form = VALIDATORS["generate"](data)
        call = self.call
        call.username, call.service, call.task_type = form["user_id"], form["service"], form["task_type"]
        snapshot = await registry.current()
        override = snapshot.override(form["user_id"], form["service"])
        if override is not None:
            model, targets = override.model, [override]
        else:
            model = form.get("model") or snapshot.settings.get("default_model") or _first_model(snapshot)
            if not model:
                raise GatewayError("model_not_found", "No model is configured.", param="model")
            targets, snapshot = await self.targets(model, None, snapshot=snapshot, overrides=False)
        messages = [{"role": "system", "content": form["system"]}] if form["system"] else []
        messages.append({"role": "user", "content": form["prompt"]})
        body = {
            "model": model,
            "messages": messages,
            "max_tokens": form["max_tokens"],
            "temperature": form["temperature"],
        }
        if form["json_mode"]:
            body["response_format"] = {"type": "json_object"}
        call.requested_model = model
        call.prices = snapshot.prices
        call.prompt_estimate = estimate_tokens(form["system"] + form["prompt"])
        await self.admit(snapshot, targets, body, "chat")
        reply = await self.call_upstream(snapshot, targets, "chat", body, False)
        call.usage = reply.usage or Usage(call.prompt_estimate, 0)
        choice = (reply.data.get("choices") or [{}])[0]
        usage = call.usage
        await self.respond_json(
            200,
            {
                "content": (choice.get("message") or {}).get("content") or "",
                "provider": call.provider,
                "model": reply.data.get("model") or call.upstream_model,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": float(call.cost(usage)[0]),
                "cached": call.cached is not None,
                "latency_ms": int(call.elapsed() * 1000),
            },
        )

    async def handle_models(self) -> None:
        snapshot = await registry.current()
        await self.admit(snapshot, [], {}, "models")
        data = [
            await self.model_entry(snapshot, name)
            for name in snapshot.model_names()
            if self.call.key.allows_model(name)
        ]
        self.call.status = 200
        await self.send_json(200, {"object": "list", "data": data})

    async def handle_model(self) -> None:
        snapshot = await registry.current()
        await self.admit(snapshot, [], {}, "models")
        name = self.call.model_id
        if not snapshot.is_known(name) or not self.call.key.allows_model(name):
            raise GatewayError("model_not_found", f"The model '{name}' does not exist.", param="model")
        self.call.status = 200
        await self.send_json(200, await self.model_entry(snapshot, name))

    # --- routing -------------------------------------------------------------

    async def targets(
        self, model: str, request_user: str | None, *, snapshot: Snapshot | None = None, overrides: bool = True
    ) -> tuple[list[Target], Snapshot]:
        call = self.call
        call.requested_model = model
        if not call.key.allows_model(model):
            raise GatewayError("model_not_allowed", f"This key may not use the model '{model}'.", param="model")
        snapshot = snapshot or await registry.current()
        call.prices = snapshot.prices
        if overrides:
            override = snapshot.override(call.key.username, None)
            if override is None and isinstance(request_user, str):
                override = snapshot.override(request_user, None)
            if override is not None:
                return [override], snapshot
        candidates = snapshot.candidates(model)
        if not candidates:
            if snapshot.is_known(model):
                raise GatewayError("provider_unavailable", f"Every provider for '{model}' is disabled.")
            raise GatewayError("model_not_found", f"The model '{model}' does not exist.", param="model")
        return candidates, snapshot

    async def call_upstream(
        self, snapshot: Snapshot, targets: list[Target], endpoint: str, body: dict, stream: bool
    ) -> Reply | Streamed:
        """The answer from the response cache, or from the router (and then cached)."""
        call = self.call
        config = snapshot.settings.get("cache") or {}
        key = None
        if config.get("enabled") and endpoint in response_cache.CACHEABLE:
            skip_lookup, skip_store = response_cache.bypass(call.header(b"cache-control"))
            key = response_cache.cache_key(call.key.tenant_id, endpoint, body, stream)
            entry = None
            if not skip_lookup:
                entry = await response_cache.get(key)
                metrics.cache_lookup(endpoint, entry is not None)
            if entry is not None:
                call.cached = entry
                if stream:
                    return Streamed(entry.chunks, response_cache.replay())
                return Reply(entry.data, Usage.from_openai(entry.usage))
            if skip_store:
                key = None
        result = await route(
            targets,
            endpoint,
            body,
            stream=stream,
            attempt=call.attempt,
            circuit=snapshot.settings.get("circuit_breaker"),
        )
        if key is not None:
            if isinstance(result, Reply):
                entry = response_cache.Entry(
                    call.provider, call.upstream_model, result.data.get("usage"), data=result.data
                )
                await response_cache.put(key, entry, config)
            elif result.first is not None:
                call.store_stream = (key, config)
        return result

    async def store_stream(self, chunks: list[bytes]) -> None:
        """Cache a stream that completed (never a broken or abandoned one)."""
        call = self.call
        if call.store_stream is None or call.cached is not None:
            return
        key, config = call.store_stream
        usage = (
            {"prompt_tokens": call.usage.input_tokens, "completion_tokens": call.usage.output_tokens}
            if call.usage
            else None
        )
        await response_cache.put(
            key, response_cache.Entry(call.provider, call.upstream_model, usage, chunks=chunks), config
        )

    async def admit(self, snapshot: Snapshot, targets: list[Target], body: dict, endpoint: str) -> None:
        """Reserve this call's estimate on every quota and limit, or refuse it."""
        call = self.call
        config = snapshot.settings.get("limits") or {}
        if endpoint in ("chat", "completions"):
            completion = (
                body.get("max_completion_tokens") or body.get("max_tokens") or config.get("default_max_tokens", 1024)
            )
        else:
            completion = 0
        prompt = call.prompt_estimate if endpoint != "models" else 0
        model = targets[0].model if targets else call.requested_model
        nano_usd = limits.estimate_cost_nano(price_of(model, snapshot.prices) if model else None, prompt, completion)
        call.admission = await limits.admit(call.key, prompt + completion, nano_usd, config)

    async def model_entry(self, snapshot: Snapshot, name: str) -> dict:
        if name in snapshot.aliases:
            upstreams = [t.upstream for t in snapshot.aliases[name]]
        else:
            upstreams = snapshot.listed[name]
        enabled = [u for u in upstreams if u.enabled]
        statuses = {await circuits.status(u.name) for u in enabled}
        status = next((s for s in ("healthy", "degraded") if s in statuses), "unhealthy")
        first = (enabled or upstreams)[0]
        return {
            "id": name,
            "object": "model",
            "created": first.created,
            "owned_by": first.name,
            "provider_type": first.type,
            "status": status,
            "enabled": bool(enabled),
        }

    # --- responses -----------------------------------------------------------

    async def send_json(self, status: int, payload: dict) -> None:
        await self.call.finish()
        await send_bytes(self.send, status, jsonfast.dumps(payload), JSON_HEADERS + self.call.response_headers())
        self.started_response = True

    async def respond_json(self, status: int, payload: dict) -> None:
        self.call.status = status
        payload["_proxy_info"] = self.call.proxy_info()
        await self.send_json(status, payload)

    async def fail(self, err: GatewayError) -> None:
        call = self.call
        call.status, call.error_code = err.status, err.code
        if self.started_response:
            return  # a stream already under way was ended by its relay
        await call.finish()
        await send_error(self.send, err, call.response_headers(), anthropic=self.anthropic)

    async def start_stream(self) -> None:
        self.call.status = 200
        await self.send(
            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + self.call.response_headers()}
        )
        self.started_response = True

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def relay(self, result: Streamed, translate, error_event) -> bool:
        """Relay a stream as its chunks arrive, each through `translate` (bytes to
        send, or None), one write per batch, and cache it once complete. False when
        the upstream broke mid-stream (the client was told in-band with
        `error_event(error)`)."""
        await self.start_stream()
        seen: list[bytes] = []
        try:
            batch = result.first
            while batch is not None:
                seen += batch
                out = b"".join([piece for piece in map(translate, batch) if piece])
                if out:
                    await self.write(out)
                batch = await anext(result.rest, None)
        except UpstreamError as error:
            await self.stream_failed(error, error_event(error))
            return False
        finally:
            await result.rest.aclose()
        await self.store_stream(seen)
        return True

    async def relay_openai_stream(self, result: Streamed, wants_usage: bool) -> None:
        """OpenAI SSE out; keep the usage chunk for accounting and drop it when
        the client did not ask for it."""
        call = self.call

        def translate(chunk: bytes) -> bytes | None:
            if b'"usage"' in chunk:
                chunk = self.take_usage(chunk, wants_usage)
                if chunk is None:
                    return None
            if b'"content"' in chunk or b'"text"' in chunk:
                call.streamed_chunks += 1
            return b"data: " + chunk + b"\n\n"

        def error_event(error: UpstreamError) -> bytes:
            return b"data: " + error_json_bytes(GatewayError("upstream_error", error.message)) + b"\n\n"

        if await self.relay(result, translate, error_event):
            await call.finish()
            await self.send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    def take_usage(self, chunk: bytes, wants_usage: bool) -> bytes | None:
        data = jsonfast.loads(chunk)
        usage = Usage.from_openai(data.get("usage"))
        if usage is None:
            return chunk
        self.call.usage = usage
        if wants_usage:
            return chunk
        if not data.get("choices"):
            return None
        data["usage"] = None
        return jsonfast.dumps(data)

    async def relay_anthropic_stream(self, result: Streamed, model: str) -> None:
        """Anthropic SSE events out, translated from the OpenAI chunks."""
        call = self.call
        converter = OpenAIToAnthropicStream(model, input_tokens_hint=call.prompt_estimate)

        def translate(chunk: bytes) -> bytes | None:
            if b'"content"' in chunk:
                call.streamed_chunks += 1
            events = converter.feed(jsonfast.loads(chunk))
            return b"".join(sse_event(name, data) for name, data in events) if events else None

        def error_event(error: UpstreamError) -> bytes:
            return sse_event("error", {"type": "error", "error": {"type": "api_error", "message": error.message}})

        try:
            completed = await self.relay(result, translate, error_event)
        finally:
            call.usage = Usage.from_openai(converter.usage)
        if completed:
            await call.finish()
            closing = b"".join(sse_event(name, data) for name, data in converter.finish())
            await self.send({"type": "http.response.body", "body": closing})

    async def stream_failed(self, error: UpstreamError, event: bytes) -> None:
        """The upstream broke mid-stream: tell the client in-band and end the stream."""
        logger.warning("Upstream failed mid-stream (request %s): %s", self.call.request_id, error.describe())
        self.call.status, self.call.error_code = 502, "upstream_error"
        await self.call.finish()
        await self.send({"type": "http.response.body", "body": event})


def _first_model(snapshot: Snapshot) -> str | None:
    for upstream in snapshot.upstreams.values():
        if upstream.enabled and upstream.models:
            return upstream.models[0]
    return None
