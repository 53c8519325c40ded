"""Anthropic's Messages API behind the OpenAI chat format (translation in
anthropic_format)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core import jsonfast
from providers.adapters.anthropic_format import (
    AnthropicStreamError,
    AnthropicToOpenAIStream,
    anthropic_to_openai_chat_response,
    openai_chat_to_anthropic,
)
from providers.adapters.base import Adapter, Reply, UpstreamError, Usage

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter(Adapter):
    supports = frozenset({"chat"})
    models_path = "/v1/models"

    def headers(self) -> dict[str, str]:
        headers = {**super().headers(), "anthropic-version": ANTHROPIC_VERSION}
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
        data = await self.post_json("/v1/messages", self.payload(body, model, stream=False))
        data = anthropic_to_openai_chat_response(data, model)
        return Reply(data, Usage.from_openai(data.get("usage")))

    async def stream(self, endpoint: str, body: dict, model: str) -> AsyncIterator[list[bytes]]:
        converter = AnthropicToOpenAIStream(model, include_usage=True)
        batches = self.post_stream("/v1/messages", self.payload(body, model, stream=True))
        try:
            async for events in batches:
                out = []
                for event, data in events:
                    try:
                        chunks = converter.feed(event or "", jsonfast.loads(data))
                    except AnthropicStreamError as exc:
                        raise UpstreamError(
                            self.scrub(f"{self.upstream.name}: {exc}"), kind="status", status=502
                        ) from None
                    except ValueError:
                        raise UpstreamError(f"{self.upstream.name}: malformed stream event", kind="invalid") from None
                    out.extend(jsonfast.dumps(chunk) for chunk in chunks)
                if out:
                    yield out
        finally:
            await batches.aclose()
