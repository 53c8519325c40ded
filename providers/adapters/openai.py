"""The OpenAI-compatible family: openai, openai_compatible, ollama, vllm,
llamacpp, and gemini through its OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

from core import jsonfast
from providers.adapters.base import Adapter, ClientEndpoint, Reply, Usage


class OpenAIAdapter(Adapter):
    wire = "openai"

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.upstream.api_key:
            headers["authorization"] = f"Bearer {self.upstream.api_key}"
        return headers

    async def request(self, endpoint: ClientEndpoint, body: dict, model: str) -> Reply:
        data = await self.post_json(self.path(endpoint), jsonfast.dumps({**body, "model": model}))
        return Reply(data, Usage.from_openai(data.get("usage")))

    async def stream(self, endpoint: ClientEndpoint, body: dict, model: str) -> AsyncIterator[list[bytes]]:
        # Always ask for usage, so a stream is billed even when the client did
        # not ask for it (the gateway strips that chunk again).
        options = {**(body.get("stream_options") or {}), "include_usage": True}
        payload = {**body, "model": model, "stream": True, "stream_options": options}
        batches = self.post_stream(self.path(endpoint), jsonfast.dumps(payload))
        try:
            async for events in batches:
                chunks = []
                for _, data in events:
                    if data == b"[DONE]":
                        if chunks:
                            yield chunks
                        return
                    chunks.append(data)
                yield chunks
        finally:
            await batches.aclose()
