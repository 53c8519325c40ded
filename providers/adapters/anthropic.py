"""Anthropic's Messages API behind the OpenAI chat format (translation in
anthropic_format)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from gateway.lib import jsonfast
from gateway.lib.http import client
from providers.adapters.anthropic_format import (
    AnthropicStreamError,
    AnthropicToOpenAIStream,
    anthropic_to_openai_chat_response,
    openai_chat_to_anthropic,
)
from providers.adapters.base import Adapter, Reply, UpstreamError, Usage, sse_events

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter(Adapter):
    supports = frozenset({"chat"})

    def headers(self) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
            **self.upstream.custom_headers,
        }
        if self.upstream.api_key:
            headers["x-api-key"] = self.upstream.api_key
        return headers

    def payload(self, body: dict, model: str, stream: bool) -> bytes:
        try:
            payload = openai_chat_to_anthropic(body, model)
        except ValueError as exc:
            # Untranslatable input is the client's: a 400, not a provider failure.
            raise UpstreamError(str(exc), kind="status", status=400) from None
        payload["stream"] = stream
        return jsonfast.dumps(payload)

    async def request(self, endpoint: str, body: dict, model: str) -> Reply:
        content = self.payload(body, model, stream=False)
        try:
            response = await client().post(
                self.upstream.base_url + "/v1/messages", content=content, headers=self.headers(), timeout=self.timeout()
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 300:
            raise self.status_error(response)
        data = anthropic_to_openai_chat_response(self.parse_json(response), model)
        return Reply(data, Usage.from_openai(data.get("usage")))

    async def stream(self, endpoint: str, body: dict, model: str) -> AsyncIterator[bytes]:
        content = self.payload(body, model, stream=True)
        http = client()
        request = http.build_request(
            "POST",
            self.upstream.base_url + "/v1/messages",
            content=content,
            headers=self.headers(),
            timeout=self.timeout(),
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        converter = AnthropicToOpenAIStream(model, include_usage=True)
        try:
            if response.status_code >= 300:
                await response.aread()
                raise self.status_error(response)
            async for event, data in sse_events(response.aiter_raw()):
                try:
                    chunks = converter.feed(event or "", jsonfast.loads(data))
                except AnthropicStreamError as exc:
                    raise UpstreamError(self.scrub(f"{self.upstream.name}: {exc}"), kind="status", status=502) from None
                except ValueError:
                    raise UpstreamError(f"{self.upstream.name}: malformed stream event", kind="invalid") from None
                for chunk in chunks:
                    yield jsonfast.dumps(chunk)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        finally:
            await response.aclose()

    async def list_models(self) -> list[str]:
        try:
            response = await client().get(
                self.upstream.base_url + "/v1/models", headers=self.headers(), timeout=self.timeout()
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 300:
            raise self.status_error(response)
        data = self.parse_json(response).get("data") or []
        return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]
