"""One adapter class per provider type; `adapter_for` picks it."""

from __future__ import annotations

from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import Adapter, ClientEndpoint, Reply, UpstreamError, Usage, model_ids
from providers.adapters.echo import EchoAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.registry import Upstream

ADAPTERS: dict[str, type[Adapter]] = {
    "openai": OpenAIAdapter,
    "openai_compatible": OpenAIAdapter,
    "ollama": OpenAIAdapter,
    "vllm": OpenAIAdapter,
    "llamacpp": OpenAIAdapter,
    "gemini": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "echo": EchoAdapter,
}

_cache: dict[str, Adapter] = {}


def adapter_for(upstream: Upstream) -> Adapter:
    adapter = _cache.get(upstream.name)
    # A rebuilt routing snapshot brings new Upstream objects: new adapters for them.
    if adapter is None or adapter.upstream is not upstream:
        adapter = _cache[upstream.name] = ADAPTERS[upstream.type](upstream)
    return adapter


__all__ = ["ADAPTERS", "Adapter", "ClientEndpoint", "Reply", "UpstreamError", "Usage", "adapter_for", "model_ids"]
