"""Self-tests for tests/mock_upstream.py and tests/openai_schema.py (no Django involved)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests import mock_upstream as upstream_module
from tests.mock_upstream import (
    TOOL_ARGUMENTS,
    MockUpstream,
    anthropic_error_body,
    drop,
    garbage,
    hang,
    slow_stream,
    status,
)
from tests.openai_schema import errors, schema_names, validate

# Assigned rather than imported so test parameters don't read as redefinitions (ruff F811).
mock_upstream = upstream_module.mock_upstream

LOCATION_SCHEMA = {"type": "object", "properties": {"location": {"type": "string"}}}
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": LOCATION_SCHEMA}}
CLAUDE_TOOL = {"name": "get_weather", "description": "weather", "input_schema": LOCATION_SCHEMA}
USER_HI = [{"role": "user", "content": "hi there"}]


def oai(mock: MockUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.openai_base, api_key="x", max_retries=0, timeout=5)


def claude(mock: MockUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.url, api_key="x", max_retries=0, timeout=5)


def post_json(mock: MockUpstream, path: str, body: dict[str, Any]) -> Any:
    return httpx.post(mock.url + path, json=body, timeout=5).json()


def sse_data(response: httpx.Response) -> Iterator[str]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line[len("data: ") :]


def post_stream_chunks(mock: MockUpstream, path: str, body: dict[str, Any]) -> list[Any]:
    with httpx.stream("POST", mock.url + path, json=body, timeout=5) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        return [d if d == "[DONE]" else json.loads(d) for d in sse_data(response)]


# --------------------------------------------------------------------------- OpenAI shapes


def test_chat_non_stream_via_sdk_and_schema(mock_upstream: MockUpstream) -> None:
    client = oai(mock_upstream)
    result = client.chat.completions.create(model="gpt-4o", messages=USER_HI, extra_headers={"X-Trace": "1"})
    assert result.choices[0].message.content == "mock: hi there"
    assert result.choices[0].finish_reason == "stop"
    usage = result.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    req = mock_upstream.last_request
    assert req is not None and req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer x" and req.headers["x-trace"] == "1"
    assert req["json"]["model"] == "gpt-4o"
    raw = post_json(mock_upstream, "/v1/chat/completions", {"model": "m", "messages": USER_HI})
    validate("CreateChatCompletionResponse", raw)
    validate("CreateChatCompletionResponse", {**raw, "_proxy_info": {"provider": "mock"}})


def test_chat_stream_via_sdk_with_usage(mock_upstream: MockUpstream) -> None:
    stream = oai(mock_upstream).chat.completions.create(
        model="gpt-4o", messages=USER_HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock: hi there"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_chat_stream_raw_chunks_validate_and_usage_only_when_asked(mock_upstream: MockUpstream) -> None:
    body = {"model": "m", "messages": USER_HI, "stream": True}
    plain = post_stream_chunks(mock_upstream, "/v1/chat/completions", body)
    assert plain[-1] == "[DONE]" and all("usage" not in c for c in plain[:-1])
    assert plain[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len(plain) == 1 + 3 + 1 + 1  # role, one per word, finish, [DONE]
    usage_body = {**body, "stream_options": {"include_usage": True}}
    with_usage = post_stream_chunks(mock_upstream, "/v1/chat/completions", usage_body)
    assert with_usage[-2]["choices"] == [] and with_usage[-2]["usage"]["total_tokens"] > 0
    for chunk in plain[:-1] + with_usage[:-1]:
        validate("CreateChatCompletionStreamResponse", chunk)


def test_chat_tool_calls_non_stream_and_stream(mock_upstream: MockUpstream) -> None:
    client = oai(mock_upstream)
    result = client.chat.completions.create(model="m", messages=USER_HI, tools=[WEATHER_TOOL])
    call = result.choices[0].message.tool_calls[0]
    assert result.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.function.arguments == TOOL_ARGUMENTS
    tool_body = {"model": "m", "messages": USER_HI, "tools": [WEATHER_TOOL]}
    validate("CreateChatCompletionResponse", post_json(mock_upstream, "/v1/chat/completions", tool_body))

    chunks = list(client.chat.completions.create(model="m", messages=USER_HI, tools=[WEATHER_TOOL], stream=True))
    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather" and deltas[0].function.arguments == ""
    assert "".join(d.function.arguments or "" for d in deltas) == TOOL_ARGUMENTS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    for chunk in post_stream_chunks(mock_upstream, "/v1/chat/completions", {**tool_body, "stream": True})[:-1]:
        validate("CreateChatCompletionStreamResponse", chunk)


def test_chat_tool_result_or_tool_choice_none_answers_text(mock_upstream: MockUpstream) -> None:
    client = oai(mock_upstream)
    messages: list[Any] = [
        *USER_HI,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": TOOL_ARGUMENTS}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    after_tool = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL])
    assert after_tool.choices[0].message.content == "mock: hi there"
    none_choice = client.chat.completions.create(model="m", messages=USER_HI, tools=[WEATHER_TOOL], tool_choice="none")
    assert none_choice.choices[0].finish_reason == "stop"


def test_completions_embeddings_images_models(mock_upstream: MockUpstream) -> None:
    client = oai(mock_upstream)
    assert client.completions.create(model="m", prompt="say this").choices[0].text == "mock: say this"
    usage_options = {"include_usage": True}
    streamed = list(client.completions.create(model="m", prompt="say this", stream=True, stream_options=usage_options))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "mock: say this"
    assert streamed[-1].usage is not None
    validate("CreateCompletionResponse", post_json(mock_upstream, "/v1/completions", {"model": "m", "prompt": "x"}))

    # The SDK requests base64 by default and decodes it.
    sdk_emb = client.embeddings.create(model="e", input=["a", "b"])
    assert len(sdk_emb.data) == 2 and len(sdk_emb.data[0].embedding) == 8
    raw_emb = post_json(mock_upstream, "/v1/embeddings", {"model": "e", "input": "a", "encoding_format": "float"})
    assert len(raw_emb["data"]) == 1
    assert raw_emb["data"][0]["embedding"] == pytest.approx(sdk_emb.data[0].embedding, abs=1e-6)
    validate("CreateEmbeddingResponse", raw_emb)

    assert client.images.generate(prompt="cat", n=2).data[1].url
    b64_images = post_json(mock_upstream, "/v1/images/generations", {"prompt": "cat", "response_format": "b64_json"})
    validate("ImagesResponse", b64_images)

    mock_upstream.models = ["alpha", {"id": "beta", "owned_by": "someone"}]
    assert [m.id for m in client.models.list()] == ["alpha", "beta"]
    listing = httpx.get(mock_upstream.openai_base + "/models").json()
    validate("ListModelsResponse", listing)
    validate("Model", listing["data"][1])
    assert client.models.retrieve("beta").owned_by == "someone"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


# --------------------------------------------------------------------------- Anthropic shape


def test_anthropic_non_stream_text_and_tool(mock_upstream: MockUpstream) -> None:
    client = claude(mock_upstream)
    message = client.messages.create(model="claude-x", max_tokens=50, messages=USER_HI)
    assert message.content[0].type == "text" and message.content[0].text == "mock: hi there"
    assert message.stop_reason == "end_turn" and message.usage.cache_read_input_tokens == 0
    # This anthropic SDK (2.x) sends api_key as a Bearer token, not x-api-key.
    assert mock_upstream.last_request.headers["AUTHORIZATION"] == "Bearer x"
    assert "anthropic-version" in mock_upstream.last_request.headers

    tool_msg = client.messages.create(model="claude-x", max_tokens=50, messages=USER_HI, tools=[CLAUDE_TOOL])
    block = tool_msg.content[0]
    assert tool_msg.stop_reason == "tool_use" and block.type == "tool_use" and block.input == {"location": "Paris"}
    follow_up = [
        *USER_HI,
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    answer = client.messages.create(model="claude-x", max_tokens=50, messages=follow_up, tools=[CLAUDE_TOOL])
    assert answer.stop_reason == "end_turn" and answer.content[0].text == "mock: hi there"


def test_anthropic_stream_text_and_tool(mock_upstream: MockUpstream) -> None:
    client = claude(mock_upstream)
    with client.messages.stream(model="claude-x", max_tokens=50, messages=USER_HI) as stream:
        assert "".join(stream.text_stream) == "mock: hi there"
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3

    with client.messages.stream(model="claude-x", max_tokens=50, messages=USER_HI, tools=[CLAUDE_TOOL]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"location": "Paris"}

    body = {"model": "c", "max_tokens": 5, "messages": USER_HI, "stream": True}
    with httpx.stream("POST", mock_upstream.url + "/v1/messages", json=body) as response:
        names = [line[len("event: ") :] for line in response.iter_lines() if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 3 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


# --------------------------------------------------------------------------- failure modes


def test_status_queue_sequence_then_normal(mock_upstream: MockUpstream) -> None:
    mock_upstream.push(status(429, headers={"Retry-After": "0"}))
    mock_upstream.push(status(500), count=2)
    client = oai(mock_upstream)
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.models.list()
    assert rate_limited.value.response.headers["retry-after"] == "0"
    assert rate_limited.value.body["code"] == "rate_limit_exceeded"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.models.list()
    assert client.models.list().data
    assert [r.behaviour for r in mock_upstream.requests] == ["status", "status", "status", "normal"]


def test_status_custom_body_and_anthropic_error(mock_upstream: MockUpstream) -> None:
    mock_upstream.push(status(529, body=anthropic_error_body(529)))
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        claude(mock_upstream).messages.create(model="c", max_tokens=5, messages=USER_HI)
    assert overloaded.value.status_code == 529 and overloaded.value.body["error"]["type"] == "overloaded_error"


def test_default_behaviour_persists_until_cleared_and_reset(mock_upstream: MockUpstream) -> None:
    mock_upstream.set_default(status(503))
    assert [httpx.get(mock_upstream.openai_base + "/models").status_code for _ in range(3)] == [503] * 3
    mock_upstream.push(status(418))
    assert httpx.get(mock_upstream.openai_base + "/models").status_code == 418
    mock_upstream.set_default(None)
    assert httpx.get(mock_upstream.openai_base + "/models").status_code == 200
    mock_upstream.push(status(500), count=3)
    mock_upstream.reset()
    assert mock_upstream.requests == [] and mock_upstream.last_request is None
    assert httpx.get(mock_upstream.openai_base + "/models").status_code == 200


def test_garbage_and_drop(mock_upstream: MockUpstream) -> None:
    mock_upstream.push(garbage())
    response = httpx.post(mock_upstream.openai_base + "/chat/completions", json={"model": "m", "messages": USER_HI})
    assert response.status_code == 200 and response.text == "<<<not json>>>"
    mock_upstream.push(drop())
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(mock_upstream.openai_base + "/chat/completions", json={"model": "m", "messages": USER_HI}, timeout=5)
    assert httpx.get(mock_upstream.openai_base + "/models").status_code == 200


def test_hang_times_out_client_then_answers(mock_upstream: MockUpstream) -> None:
    mock_upstream.push(hang(0.5))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(mock_upstream.openai_base + "/models", timeout=0.2)
    assert time.monotonic() - started < 0.5
    mock_upstream.push(hang(0.2))
    assert httpx.get(mock_upstream.openai_base + "/models", timeout=2).status_code == 200


def test_stop_is_quick_even_with_hanging_request() -> None:
    mock = MockUpstream()
    mock.push(hang(60))
    outcome: list[Exception | int] = []

    def call() -> None:
        try:
            outcome.append(httpx.get(mock.openai_base + "/models", timeout=10).status_code)
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    assert mock.wait_for_requests(1, timeout=2)
    started = time.monotonic()
    mock.stop()
    worker.join(timeout=3)
    assert time.monotonic() - started < 2
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)


def test_slow_stream_is_observable_before_it_ends(mock_upstream: MockUpstream) -> None:
    mock_upstream.push(slow_stream(0.1))
    body = {"model": "m", "messages": USER_HI, "stream": True}
    started = time.monotonic()
    with httpx.stream("POST", mock_upstream.openai_base + "/chat/completions", json=body, timeout=5) as response:
        events = sse_data(response)
        next(events)
        sent_when_first_seen = mock_upstream.stream_events_sent
        assert mock_upstream.first_chunk_sent.is_set() and not mock_upstream.stream_done.is_set()
        rest = list(events)
    assert sent_when_first_seen <= 2 and len(rest) == 5
    assert mock_upstream.stream_events_sent == 6 and mock_upstream.stream_done.is_set()
    assert time.monotonic() - started >= 0.5


def test_keep_alive_reuses_connection(mock_upstream: MockUpstream) -> None:
    with httpx.Client(timeout=5) as client:
        first = client.get(mock_upstream.openai_base + "/models")
        client.post(mock_upstream.openai_base + "/embeddings", json={"model": "e", "input": "x"})
        body = {"model": "m", "messages": USER_HI, "stream": True}
        with client.stream("POST", mock_upstream.openai_base + "/chat/completions", json=body) as r:
            r.read()
        client.get(mock_upstream.openai_base + "/models")
    assert first.headers["content-length"] == str(len(first.content))
    assert len({r.client for r in mock_upstream.requests}) == 1


def test_unknown_route_and_bad_body(mock_upstream: MockUpstream) -> None:
    assert httpx.post(mock_upstream.url + "/v2/nothing", json={}).status_code == 404
    bad = httpx.post(mock_upstream.openai_base + "/chat/completions", content=b"not json")
    assert bad.status_code == 400 and mock_upstream.last_request.json is None


# --------------------------------------------------------------------------- schema helper


def test_required_schema_names_exist() -> None:
    names = set(schema_names())
    wanted = {
        "CreateChatCompletionResponse",
        "CreateChatCompletionStreamResponse",
        "CreateCompletionResponse",
        "CreateEmbeddingResponse",
        "ImagesResponse",
        "ListModelsResponse",
        "Model",
    }
    assert wanted <= names


def test_schema_rejects_broken_instances(mock_upstream: MockUpstream) -> None:
    good = post_json(mock_upstream, "/v1/chat/completions", {"model": "m", "messages": USER_HI})
    broken = {k: v for k, v in good.items() if k != "choices"}
    with pytest.raises(AssertionError, match="'choices' is a required property"):
        validate("CreateChatCompletionResponse", broken)
    wrong_type = {**good, "choices": [{**good["choices"][0], "finish_reason": "banana"}]}
    assert errors("CreateChatCompletionResponse", wrong_type)
    with pytest.raises(AssertionError):
        validate("ListModelsResponse", {"object": "list", "data": [{"id": "x"}]})
    with pytest.raises(KeyError):
        validate("NoSuchSchema", {})


def test_schema_nullable_fields_accept_null() -> None:
    # finish_reason/usage/logprobs use OpenAPI 3.0 `nullable: true` in the stream schema.
    choice = {"index": 0, "delta": {"content": "x"}, "finish_reason": None, "logprobs": None}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    chunk["usage"] = None
    validate("CreateChatCompletionStreamResponse", chunk)
