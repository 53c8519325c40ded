"""Prometheus metrics of the /v1 path (`GET /metrics/prometheus`).

Recorded once per client call from what its usage record says (`observe`),
plus cache lookups and rate-limit refusals where they happen. Labels come
from the gateway's own config (endpoint, provider, upstream model, status),
never from free client input, so their number stays bounded.

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (scripts/serve.sh
does) to a directory that is empty at start: every process writes its values
there and a scrape adds them up, whichever process answers it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter(
    "llm_gateway_requests", "Client calls answered", ["endpoint", "provider", "model", "status", "cached"]
)
LATENCY = Histogram(
    "llm_gateway_request_duration_seconds",
    "Time from request to the last byte (streams: whole stream)",
    ["endpoint", "provider"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_LATENCY = Histogram(
    "llm_gateway_upstream_duration_seconds",
    "Time spent calling upstream providers (all attempts; streams: to the first chunk)",
    ["provider"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter("llm_gateway_tokens", "Tokens billed", ["provider", "model", "type"])
COST = Counter("llm_gateway_cost_usd", "Cost billed in USD", ["provider", "model"])
CACHE = Counter("llm_gateway_cache_lookups", "Response cache lookups", ["endpoint", "result"])
REFUSALS = Counter("llm_gateway_rate_limited", "Calls refused by a quota or limit", ["level", "kind"])

# Label children are looked up once per label set: labels() validates and locks every time.
_children: dict[tuple, object] = {}


def _child(metric, *labels):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe(fields: dict, upstream_seconds: float) -> None:
    """One finished client call, from its usage record's fields."""
    endpoint, provider, model = fields["endpoint"], fields["provider"] or "gateway", fields["upstream_model"]
    cached = fields["cached"]
    _child(REQUESTS, endpoint, provider, model, str(fields["status"]), "true" if cached else "false").inc()
    _child(LATENCY, endpoint, provider).observe(fields["latency_ms"] / 1000)
    if upstream_seconds:
        _child(UPSTREAM_LATENCY, provider).observe(upstream_seconds)
    if fields["input_tokens"]:
        _child(TOKENS, provider, model, "input").inc(fields["input_tokens"])
    if fields["output_tokens"]:
        _child(TOKENS, provider, model, "output").inc(fields["output_tokens"])
    if fields["cost_usd"]:
        _child(COST, provider, model).inc(float(fields["cost_usd"]))


def cache_lookup(endpoint: str, hit: bool) -> None:
    _child(CACHE, endpoint, "hit" if hit else "miss").inc()


def refused(level: str, kind: str) -> None:
    _child(REFUSALS, level, kind).inc()


# Collectors of state that lives in the apps (e.g. each provider's circuit),
# registered by their app at start-up and asked at every scrape.
_collectors: list = []
_registered: set[int] = set()


def register_collector(collector) -> None:
    """Add a prometheus_client collector (an object with `collect()`) to every scrape."""
    _collectors.append(collector)


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every process's metrics (body, content type)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _collectors:
            registry.register(collector)
    else:
        registry = REGISTRY
        for collector in _collectors:
            if id(collector) not in _registered:
                registry.register(collector)
                _registered.add(id(collector))
    return generate_latest(registry), CONTENT_TYPE_LATEST
