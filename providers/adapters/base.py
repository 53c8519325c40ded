"""What every provider adapter is: one class per wire format, speaking OpenAI's
chat/completions/embeddings/images formats to the router and the provider's own
format to the upstream, raising one error type.

Which client endpoints a provider serves, and at which upstream path, is the
endpoint table's (gateway/endpoints.py): each entry maps wire formats to paths,
and an adapter serves the endpoints that list its `wire`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from core import jsonfast
from core.upstream_transport import RequestTarget, UpstreamResponse, transport
from providers.models import mask_secret
from providers.registry import Upstream


class ClientEndpoint(Protocol):
    """What an adapter reads of a client endpoint (an entry of gateway/endpoints.py)."""

    name: str
    upstream: Mapping[str, str]  # wire format -> path on an upstream of that format


# Upstream statuses that are the client's fault: passed through, never retried.
CLIENT_FAULT_STATUSES = frozenset({400, 413, 422})
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


class UpstreamError(Exception):
    """An upstream call failed. `kind` is connect | timeout | status | invalid."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retry_after: float | None = None,
        body: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def client_fault(self) -> bool:
        return self.kind == "status" and self.status in CLIENT_FAULT_STATUSES

    @property
    def retryable(self) -> bool:
        """Worth trying the same provider again (else: go on to the next one)."""
        if self.kind != "status":
            return True
        return self.status in RETRYABLE_STATUSES or (self.status or 0) >= 500

    def describe(self) -> str:
        if self.kind == "status":
            return f"HTTP {self.status}"
        return {"connect": "connection error", "timeout": "timeout", "invalid": "invalid response"}[self.kind]


@dataclass(slots=True)
class Usage:
    """What a call used, as billed. `input_tokens` is the whole prompt: it includes
    `cached_tokens` (read from the provider's prompt cache) and `cache_write_tokens`
    (written to it, Anthropic's cache_creation_input_tokens); `output_tokens`
    includes `reasoning_tokens`."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: dict | None) -> Usage | None:
        """From OpenAI's usage object; a cache write is read from
        `prompt_tokens_details.cache_write_tokens` (how the gateway's own
        translations carry it) or a top-level `cache_creation_input_tokens`."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens_details")
        prompt = prompt if isinstance(prompt, dict) else {}
        completion = usage.get("completion_tokens_details")
        completion = completion if isinstance(completion, dict) else {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(prompt.get("cached_tokens") or 0),
            cache_write_tokens=int(prompt.get("cache_write_tokens") or usage.get("cache_creation_input_tokens") or 0),
            reasoning_tokens=int(completion.get("reasoning_tokens") or 0),
        )


@dataclass(slots=True)
class Reply:
    """A complete (non-streamed) answer in OpenAI's format."""

    data: dict
    usage: Usage | None


class Adapter:
    """Base of the provider adapters. Subclasses set `wire` (the API format they
    speak upstream) and implement `request` and `stream`."""

    wire = ""  # openai | anthropic | echo: the key of an endpoint's `upstream` paths
    models_path = "/models"

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        seconds = upstream.timeout
        self._timeout = {"connect": min(seconds, 10.0), "read": seconds, "write": seconds, "pool": seconds}
        self._targets: dict[tuple[str, str], RequestTarget] = {}

    def serves(self, endpoint: ClientEndpoint) -> bool:
        return self.wire in endpoint.upstream

    def path(self, endpoint: ClientEndpoint) -> str:
        """The endpoint's path on this upstream (after its base URL)."""
        return endpoint.upstream[self.wire]

    def target(self, method: str, path: str) -> RequestTarget:
        """The prepared upstream request head for a method and path, built once per adapter
        (an adapter lives as long as its provider's config)."""
        target = self._targets.get((method, path))
        if target is None:
            try:
                target = RequestTarget(method, self.upstream.base_url + path, self.headers())
            except (ValueError, httpx.InvalidURL) as exc:
                raise UpstreamError(self.scrub(f"{self.upstream.name}: {exc}"), kind="invalid") from None
            self._targets[(method, path)] = target
        return target

    async def send(self, method: str, path: str, content: bytes = b"") -> UpstreamResponse:
        """Send through the pooled transport; the caller reads and closes the response."""
        try:
            return await transport().send(self.target(method, path), content, self._timeout)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None

    async def fetch(self, method: str, path: str, content: bytes = b"") -> UpstreamResponse:
        """Send and read the whole answer."""
        response = await self.send(method, path, content)
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        finally:
            await response.aclose()
        return response

    def headers(self) -> dict[str, str]:
        """Request headers for the upstream, its key included."""
        return {"content-type": "application/json", **self.upstream.custom_headers}

    def models_url(self) -> str:
        return self.upstream.base_url + self.models_path

    async def request(self, endpoint: ClientEndpoint, body: dict, model: str) -> Reply:
        raise NotImplementedError

    def stream(self, endpoint: ClientEndpoint, body: dict, model: str) -> AsyncIterator[list[bytes]]:
        """Yield the streamed chunks, each the JSON text of an OpenAI chunk object,
        in batches: the chunks that arrived together (never an empty batch), so a
        relay writes them to the client at once.

        Errors before the first chunk raise UpstreamError (so the router can
        retry or fail over); the caller must `aclose()` the iterator."""
        raise NotImplementedError

    def list_models(self) -> list[str]:
        """The model ids the upstream lists. For management views and the provider
        "test" action, not the request path: plain synchronous httpx (which honours
        HTTPS_PROXY and the like). Raises UpstreamError with a message safe to show."""
        try:
            response = httpx.get(self.models_url(), headers=self.headers(), timeout=min(self.upstream.timeout, 15))
        except httpx.HTTPError as exc:
            raise UpstreamError(self.scrub(f"{type(exc).__name__}: {exc}"), kind="connect") from None
        if response.status_code != 200:
            raise UpstreamError(
                f"upstream answered HTTP {response.status_code}", kind="status", status=response.status_code
            )
        try:
            return model_ids(response.json())
        except (ValueError, AttributeError):
            raise UpstreamError("upstream model list is not JSON", kind="invalid") from None

    # --- helpers for HTTP adapters ------------------------------------------

    async def post_json(self, path: str, content: bytes) -> dict:
        response = await self.fetch("POST", path, content)
        if response.status_code >= 300:
            raise self.status_error(response)
        return self.parse_json(response)

    async def post_stream(self, path: str, content: bytes) -> AsyncIterator[list[tuple[str | None, bytes]]]:
        """The upstream's server-sent events, in batches (see `sse_batches`); the
        response is closed however the iteration ends."""
        response = await self.send("POST", path, content)
        try:
            if response.status_code >= 300:
                await response.aread()
                raise self.status_error(response)
            async for batch in sse_batches(response.aiter_raw()):
                yield batch
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from None
        finally:
            await response.aclose()

    def scrub(self, text: str) -> str:
        key = self.upstream.api_key
        return text.replace(key, mask_secret(key)) if key and key in text else text

    def transport_error(self, exc: Exception) -> UpstreamError:
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(f"{self.upstream.name}: upstream timed out", kind="timeout")
        return UpstreamError(self.scrub(f"{self.upstream.name}: {type(exc).__name__}"), kind="connect")

    def status_error(self, response: UpstreamResponse) -> UpstreamError:
        """An error for a non-2xx answer, with the upstream's own message when it gave one."""
        message = f"{self.upstream.name} answered HTTP {response.status_code}"
        body = None
        try:
            body = jsonfast.loads(response.content)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                message = error["message"]
            elif isinstance(error, str):
                message = error
        except ValueError:
            pass
        retry_after = None
        header = response.headers.get("retry-after")
        if header:
            try:
                retry_after = float(header)
            except ValueError:
                pass
        return UpstreamError(
            self.scrub(message), kind="status", status=response.status_code, retry_after=retry_after, body=body
        )

    def parse_json(self, response: UpstreamResponse) -> dict:
        try:
            data = jsonfast.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.upstream.name}: response is not a JSON object", kind="invalid")
        return data


def model_ids(listing: dict) -> list[str]:
    """Model ids of an OpenAI- or Anthropic-style model list."""
    data = listing.get("data") or []
    return [item["id"] for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)]


async def sse_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[str | None, bytes]]]:
    """(event name, data) of each server-sent event in a byte stream, a list per
    read: the events that arrived together (a busy process finds many waiting),
    so they are handled, and written on, in one go. Never an empty list."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        batch = []
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block, buffer = buffer[:end], buffer[end + 2 :]
            event = _parse_event(block)
            if event is not None:
                batch.append(event)
        if batch:
            yield batch
    if buffer.strip():
        event = _parse_event(buffer.strip())
        if event is not None:
            yield [event]


def _parse_event(block: bytes) -> tuple[str | None, bytes] | None:
    name = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
    if not data:
        return None
    return name, b"\n".join(data)
