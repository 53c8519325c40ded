"""gateway/endpoints.py: the one table of client endpoints, and what reads it."""

from __future__ import annotations

import pytest

from core.errors import GatewayError
from gateway.endpoints import CLIENT_PATHS, ENDPOINTS, answers_in_anthropic_shape, resolve
from gateway.pipeline import Pipeline
from providers.adapters import ADAPTERS
from providers.registry import Upstream


@pytest.mark.parametrize(
    "method,path,name,model_id",
    [
        ("POST", "/v1/chat/completions", "chat", None),
        ("POST", "/v1/chat/completions/", "chat", None),
        ("POST", "/v1/completions", "completions", None),
        ("POST", "/v1/embeddings", "embeddings", None),
        ("POST", "/v1/images/generations", "images", None),
        ("POST", "/v1/messages", "messages", None),
        ("POST", "/api/v1/generate", "generate", None),
        ("GET", "/v1/models", "models", None),
        ("GET", "/v1/models/", "models", None),
        ("GET", "/v1/models/llama3:8b", "model", "llama3:8b"),
        ("GET", "/v1/models/meta/llama-3-70b", "model", "meta/llama-3-70b"),
    ],
)
def test_paths_resolve_to_their_entry(method, path, name, model_id):
    endpoint, found_id = resolve(method, path)
    assert (endpoint.name, found_id) == (name, model_id)


def test_a_wrong_method_is_405_naming_the_right_one():
    error = resolve("GET", "/v1/chat/completions")
    assert isinstance(error, GatewayError) and error.status == 405 and "POST" in error.message


def test_an_unknown_path_is_404():
    error = resolve("POST", "/v1/nothing")
    assert isinstance(error, GatewayError) and error.code == "not_found"


def test_every_entry_has_its_handler_and_a_validator_for_its_body():
    for endpoint in ENDPOINTS.values():
        assert callable(getattr(Pipeline, f"handle_{endpoint.handler}")), endpoint.name
        assert (endpoint.validate is not None) == (endpoint.method == "POST"), endpoint.name
        assert endpoint.routes_as is None or endpoint.routes_as in ENDPOINTS
        assert not (endpoint.cacheable and endpoint.routes_as), endpoint.name


def test_only_messages_answers_errors_in_anthropic_shape():
    assert [e.name for e in ENDPOINTS.values() if e.anthropic_errors] == ["messages"]
    assert answers_in_anthropic_shape("/v1/messages/") and not answers_in_anthropic_shape("/v1/chat/completions")


def test_client_paths_outside_v1_are_in_the_table():
    assert {p for p in CLIENT_PATHS if not p.startswith("/v1/")} == {"/api/v1/generate"}


@pytest.mark.parametrize(
    "type,served",
    [
        ("openai", {"chat", "completions", "embeddings", "images"}),
        ("ollama", {"chat", "completions", "embeddings", "images"}),
        ("anthropic", {"chat"}),
        ("echo", {"chat", "completions", "embeddings", "images"}),
    ],
)
def test_adapters_serve_the_endpoints_the_table_gives_their_wire_format(type, served):
    upstream = Upstream(1, "p", type, "http://127.0.0.1:9", "", 0, 5.0, 0, {}, None, None, True, ())
    adapter = ADAPTERS[type](upstream)
    assert {e.name for e in ENDPOINTS.values() if adapter.serves(e)} == served
    for endpoint in ENDPOINTS.values():
        if adapter.serves(endpoint) and type != "echo":
            assert adapter.path(endpoint).startswith("/")
