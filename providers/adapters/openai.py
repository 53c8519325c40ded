"""The OpenAI-compatible family: openai, openai_compatible, ollama, vllm,
llamacpp, and gemini through its OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from gateway.lib import jsonfast
from gateway.lib.http import client
from providers.adapters.base import Adapter, Reply, Usage, sse_events

PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
    "images": "/images/generations",
}


class OpenAIAdapter(Adapter):
    supports = frozenset(PATHS)

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.upstream.custom_headers}
        if self.upstream.api_key:
            headers["authorization"] = f"Bearer {self.upstream.api_key}"
        return headers

    async def request(self, endpoint: str, body: dict, model: str) -> Reply:
        payload = {**body, "model": model}
        try:
            response = await client().post(
                self.upstream.base_url + PATHS[endpoint],
                content=jsonfast.dumps(payload),
                headers=self.headers(),
                timeout=self.timeout(),
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 300:
            raise self.status_error(response)
        data = self.parse_json(response)
        return Reply(data, Usage.from_openai(data.get("usage")))

    async def stream(self, endpoint: str, body: dict, model: str) -> AsyncIterator[bytes]:
        # Always ask for usage, so a stream is billed even when the client did
        # not ask for it (the gateway strips that chunk again).
        options = {**(body.get("stream_options") or {}), "include_usage": True}
        payload = {**body, "model": model, "stream": True, "stream_options": options}
        http = client()
        request = http.build_request(
            "POST",
            self.upstream.base_url + PATHS[endpoint],
            content=jsonfast.dumps(payload),
            headers=self.headers(),
            timeout=self.timeout(),
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        try:
            if response.status_code >= 300:
                await response.aread()
                raise self.status_error(response)
            async for _, data in sse_events(response.aiter_raw()):
                if data == b"[DONE]":
                    return
                yield data
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        finally:
            await response.aclose()

    async def list_models(self) -> list[str]:
        try:
            response = await client().get(
                self.upstream.base_url + "/models", headers=self.headers(), timeout=self.timeout()
            )
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        if response.status_code >= 300:
            raise self.status_error(response)
        data = self.parse_json(response).get("data") or []
        return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]
