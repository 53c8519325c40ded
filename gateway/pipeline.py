"""The /v1 request pipeline: authenticate, validate, route, answer.

`Pipeline.run` reads top to bottom: look the key up, parse the body, and hand
it to the endpoint's handler (`handle_<handler>` of its entry in
gateway/endpoints.py). A handler parses, calls and answers: it validates the
body, asks the routing snapshot for the targets to try, admits the call on its
estimate, calls the upstream (through the response cache and the router), and
answers JSON or relays the stream. What the call did is kept on its `Call`
(gateway/call.py), which settles and records it once; streams are relayed by
gateway/relay.py. Routing policy is the snapshot's, retries the router's,
provider formats the adapters'.
"""

from __future__ import annotations

import logging

from accounts import keycache
from accounts.auth import key_from_headers
from core import jsonfast, metrics
from core.errors import GatewayError, internal_error, invalid_api_key
from gateway import response_cache
from gateway.anthropic_ingress import anthropic_to_openai_chat_request, openai_to_anthropic_response
from gateway.asgi_io import JSON_HEADERS, send_bytes, send_error
from gateway.call import Call
from gateway.endpoints import ENDPOINTS, Endpoint
from gateway.relay import StreamRelay
from gateway.validation import parse_json_object
from providers import registry
from providers.adapters import Reply, Usage
from providers.circuit import circuits
from providers.pricing import price_of
from providers.registry import Snapshot, Target
from providers.router import ClientFault, Streamed, route
from usage import limits

logger = logging.getLogger("gateway.v1")

CHAT = ENDPOINTS["chat"]


class Pipeline:
    def __init__(self, call: Call, send) -> None:
        self.call = call
        self.send = send

    def relay(self) -> StreamRelay:
        return StreamRelay(self.call, self.send, self.store_stream)

    # --- entry point ---------------------------------------------------------

    async def run(self, body: bytes) -> None:
        call = self.call
        endpoint = call.endpoint
        try:
            call.key = await keycache.lookup(key_from_headers(lambda name: call.header(name.encode())))
            if call.key is None:
                raise invalid_api_key()
            handler = getattr(self, f"handle_{endpoint.handler}")
            if endpoint.method == "GET":
                await handler()
            else:
                await handler(endpoint, parse_json_object(body))
        except GatewayError as err:
            await self.fail(err)
        except ClientFault as fault:
            error = fault.error
            await self.fail(GatewayError("invalid_request", error.message, status=error.status))
        except Exception:
            logger.exception("Unhandled error in %s (request %s)", endpoint.name, call.request_id)
            await self.fail(internal_error())

    # --- endpoints -----------------------------------------------------------

    async def handle_proxy(self, endpoint: Endpoint, data: dict) -> None:
        """The OpenAI-format endpoints: same body in, same body out."""
        endpoint.validate(data)
        if endpoint.default_model:
            data.setdefault("model", endpoint.default_model)
        targets, snapshot = await self.targets(data["model"], data.get("user"))
        stream = endpoint.streams and bool(data.get("stream"))
        self.call.stream = stream
        await self.admit(snapshot, targets, endpoint, data)
        result = await self.call_upstream(snapshot, targets, endpoint, data, stream)
        if isinstance(result, Streamed):
            await self.relay().openai(result, bool((data.get("stream_options") or {}).get("include_usage")))
        else:
            self.call.usage = result.usage
            await self.respond_json(200, result.data)

    async def handle_messages(self, endpoint: Endpoint, data: dict) -> None:
        """Anthropic Messages ingress: translated to chat, routed, translated back."""
        endpoint.validate(data)
        try:
            chat = anthropic_to_openai_chat_request(data)
        except ValueError as exc:
            raise GatewayError("invalid_request", str(exc)) from None
        targets, snapshot = await self.targets(data["model"], (data.get("metadata") or {}).get("user_id"))
        self.call.stream = bool(data.get("stream"))
        await self.admit(snapshot, targets, endpoint, data)
        result = await self.call_upstream(snapshot, targets, CHAT, chat, self.call.stream)
        if isinstance(result, Streamed):
            await self.relay().anthropic(result, data["model"])
        else:
            self.call.usage = result.usage
            await self.respond_json(200, openai_to_anthropic_response(result.data, data["model"]))

    async def handle_generate(self, endpoint: Endpoint, data: dict) -> None:
        """The simple form: prompt in, text out, attributed to `user_id` and `service`."""
        form = endpoint.validate(data)
        call = self.call
        call.username, call.service, call.task_type = form["user_id"], form["service"], form["task_type"]
        snapshot = await registry.current()
        override = snapshot.override(form["user_id"], form["service"], call.key.tenant_id)
        if override is not None:
            model, targets = override.model, [override]
        else:
            model = form.get("model") or snapshot.default_model()
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
        await self.admit(snapshot, targets, endpoint, form)
        reply = await self.call_upstream(snapshot, targets, CHAT, body, False)
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
        await self.admit(snapshot, [], self.call.endpoint, {})
        data = [
            await self.model_entry(snapshot, name)
            for name in snapshot.model_names()
            if self.call.key.allows_model(name)
        ]
        self.call.status = 200
        await self.send_json(200, {"object": "list", "data": data})

    async def handle_model(self) -> None:
        snapshot = await registry.current()
        await self.admit(snapshot, [], self.call.endpoint, {})
        name = self.call.model_id
        if not snapshot.is_known(name) or not self.call.key.allows_model(name):
            raise GatewayError("model_not_found", f"The model '{name}' does not exist.", param="model")
        self.call.status = 200
        await self.send_json(200, await self.model_entry(snapshot, name))

    # --- routing, admission, the upstream call ---------------------------------

    async def targets(
        self, model: str, request_user: str | None, *, snapshot: Snapshot | None = None, overrides: bool = True
    ) -> tuple[list[Target], Snapshot]:
        """The targets to try for `model` (an override for the key's user, or for
        the request's `user`, wins) and the snapshot they come from."""
        call = self.call
        call.requested_model = model
        if not call.key.allows_model(model):
            raise GatewayError("model_not_allowed", f"This key may not use the model '{model}'.", param="model")
        snapshot = snapshot or await registry.current()
        call.prices = snapshot.prices
        users = (call.key.username, request_user if isinstance(request_user, str) else None) if overrides else ()
        return snapshot.route(model, users, call.key.tenant_id), snapshot

    async def admit(self, snapshot: Snapshot, targets: list[Target], endpoint: Endpoint, body: dict) -> None:
        """Reserve this call's estimate on every quota and limit, or refuse it."""
        call = self.call
        config = snapshot.settings.get("limits") or {}
        prompt = call.prompt_estimate = limits.estimate_prompt_tokens(endpoint.prompt(body))
        completion = limits.completion_allowance(body, endpoint.max_tokens_fields, config)
        model = targets[0].model if targets else call.requested_model
        nano_usd = limits.estimate_cost_nano(price_of(model, snapshot.prices) if model else None, prompt, completion)
        call.admission = await limits.admit(call.key, prompt + completion, nano_usd, config)

    async def call_upstream(
        self, snapshot: Snapshot, targets: list[Target], endpoint: Endpoint, body: dict, stream: bool
    ) -> Reply | Streamed:
        """The answer from the response cache, or from the router (and then cached)."""
        call = self.call
        config = snapshot.settings.get("cache") or {}
        key = None
        if config.get("enabled") and endpoint.cacheable:
            skip_lookup, skip_store = response_cache.bypass(call.header(b"cache-control"))
            key = response_cache.cache_key(call.key.tenant_id, endpoint.name, body, stream)
            entry = None
            if not skip_lookup:
                entry = await response_cache.get(key)
                metrics.cache_lookup(endpoint.name, entry is not None)
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

    # --- answers -------------------------------------------------------------

    async def send_json(self, status: int, payload: dict) -> None:
        await self.call.finish()
        await send_bytes(self.send, status, jsonfast.dumps(payload), JSON_HEADERS + self.call.response_headers())
        self.call.response_started = True

    async def respond_json(self, status: int, payload: dict) -> None:
        self.call.status = status
        payload["_proxy_info"] = self.call.proxy_info()
        await self.send_json(status, payload)

    async def fail(self, err: GatewayError) -> None:
        call = self.call
        call.status, call.error_code = err.status, err.code
        if call.response_started:
            return  # a stream already under way was ended by its relay
        await call.finish()
        await send_error(self.send, err, call.response_headers(), anthropic=call.endpoint.anthropic_errors)
