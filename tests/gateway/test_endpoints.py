"""End to end through the live gateway with the official `openai` SDK: every
/v1 endpoint, against the real HTTP mock upstream (or the built-in echo
provider), checked against OpenAI's own OpenAPI schemas."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from providers.models import Override
from tests.openai_schema import validate

ERROR_FIELDS = {"message", "type", "param", "code"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


# --------------------------------------------------------------------------- helpers


def auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


ANY_PARAM = object()


def assert_error(body: dict, code: str, param: object = None) -> dict:
    """The contract's error shape, exactly, with the expected code (and param, unless ANY_PARAM)."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["code"] == code, error
    if param is ANY_PARAM:
        assert error["param"] is None or isinstance(error["param"], str), error
    else:
        assert error["param"] == param, error
    return error


def sse_payloads(response: httpx.Response) -> list[str]:
    """The `data:` payloads of a (fully read) SSE response, in order."""
    text = response.read().decode()
    events = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    payloads = []
    for block in events:
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        assert all(line.startswith("data: ") for line in lines), block
        payloads.append("\n".join(line[len("data: ") :] for line in lines))
    return payloads


def stream_raw(live_gateway, raw_key: str, path: str, body: dict) -> tuple[httpx.Response, list[str]]:
    with httpx.Client(timeout=20) as http:
        with http.stream("POST", live_gateway.v1 + path, json=body, headers=auth(raw_key)) as response:
            payloads = sse_payloads(response)
    return response, payloads


def stream_chunks(live_gateway, raw_key: str, body: dict) -> list[dict]:
    response, payloads = stream_raw(live_gateway, raw_key, "/chat/completions", {**body, "stream": True})
    assert response.status_code == 200
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def chunk_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def embedder(proxy_world, factory, mock_upstream):
    return factory.make_provider("embedder", base_url=mock_upstream.openai_base, models=["text-embedding-3-small"])


@pytest.fixture
def imager(proxy_world, factory, mock_upstream):
    return factory.make_provider("imager", base_url=mock_upstream.openai_base, models=["dall-e-3"])


@pytest.fixture
def echo_provider(proxy_world, factory):
    return factory.make_provider("echo", type="echo", models=["echo"])


@pytest.fixture
def restricted_raw(proxy_world, factory) -> str:
    """A client key of the member that may only use gpt-4o-mini."""
    _, raw = factory.make_key(proxy_world.member, name="restricted", allowed_models=["gpt-4o-mini"])
    return raw


@pytest.fixture
def restricted_client(live_gateway, restricted_raw) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_gateway.v1, api_key=restricted_raw, max_retries=0, timeout=20)


# --------------------------------------------------------------------------- chat, non-stream


def test_chat_response_validates_and_carries_proxy_info(client, upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    body = raw.http_response.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "mock: hello there"
    info = body["_proxy_info"]
    assert set(info) == {"provider", "attempt_number", "response_time", "request_id"}
    assert info["provider"] == "primary"
    assert info["attempt_number"] == 1
    assert isinstance(info["response_time"], (int, float)) and info["response_time"] >= 0
    assert isinstance(info["request_id"], str) and info["request_id"]


def test_chat_response_headers_name_request_provider_and_cache(client, upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    body = raw.http_response.json()
    assert raw.headers["x-request-id"] == body["_proxy_info"]["request_id"]
    assert raw.headers["x-gateway-provider"] == "primary"
    assert raw.headers["x-cache"] == "MISS"


def test_chat_forwards_model_and_extra_fields_untouched(client, upstream, mock_upstream):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,
        seed=42,
        user="end-user-7",
        extra_body={"custom_field": 1, "nested_extra": {"a": [1, 2]}},
    )
    sent = mock_upstream.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["messages"] == messages
    assert sent.json["seed"] == 42
    assert sent.json["user"] == "end-user-7"
    assert sent.json["custom_field"] == 1
    assert sent.json["nested_extra"] == {"a": [1, 2]}


def test_chat_sends_upstream_key_not_client_key(client, upstream, mock_upstream, proxy_world):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    headers = mock_upstream.last_request.headers
    assert headers["authorization"] == "Bearer sk-test-upstream-secret-9876"
    assert proxy_world.member_raw not in json.dumps(dict(headers))


# --------------------------------------------------------------------------- chat, stream


def test_chat_stream_chunks_validate_and_concatenate(live_gateway, proxy_world, upstream):
    chunks = stream_chunks(
        live_gateway,
        proxy_world.member_raw,
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a b c"}]},
    )
    assert chunks
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "mock: a b c"


def test_chat_stream_with_sdk_concatenates_to_answer(client, upstream):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    chunks = list(stream)
    assert chunk_text(chunks) == "mock: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_chat_stream_include_usage_ends_with_usage_chunk(client, upstream):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "count me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == len("mock: count me".split())
    assert last.usage.prompt_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_but_upstream_was_asked(
    live_gateway, proxy_world, upstream, mock_upstream
):
    chunks = stream_chunks(
        live_gateway, proxy_world.member_raw, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x y"}]}
    )
    assert chunks
    assert all(chunk.get("usage") is None for chunk in chunks), chunks
    assert all(chunk["choices"] for chunk in chunks)
    assert mock_upstream.last_request.json["stream_options"]["include_usage"] is True


def test_chat_stream_is_event_stream_ending_with_done(live_gateway, proxy_world, upstream):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.Client(timeout=20) as http:
        with http.stream(
            "POST", live_gateway.v1 + "/chat/completions", json=body, headers=auth(proxy_world.member_raw)
        ) as response:
            raw = response.read().decode()
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0].strip() == "text/event-stream"
    assert raw.startswith("data: ")
    assert raw.rstrip("\n").endswith("data: [DONE]")
    assert raw.endswith("\n\n")
    assert response.headers["x-gateway-provider"] == "primary"
    assert response.headers["x-cache"] == "MISS"
    assert response.headers["x-request-id"]


# --------------------------------------------------------------------------- tools


def test_chat_tool_call_round_trip(client, upstream, mock_upstream):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    assert mock_upstream.last_request.json["tools"] == [WEATHER_TOOL]

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "mock: What's the weather in Paris?"
    sent = mock_upstream.last_request.json["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}
    assert sent[-2]["tool_calls"][0]["id"] == call.id


def test_chat_tool_call_response_validates(client, upstream):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    )
    validate("CreateChatCompletionResponse", raw.http_response.json())


def test_chat_streamed_tool_call_accumulates_arguments(client, upstream):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris"}


# --------------------------------------------------------------------------- completions


def test_completion_validates_and_answers(client, upstream, mock_upstream):
    raw = client.completions.with_raw_response.create(model="gpt-4o-mini", prompt="say hi", max_tokens=20)
    body = raw.http_response.json()
    validate("CreateCompletionResponse", body)
    assert body["choices"][0]["text"] == "mock: say hi"
    assert body["_proxy_info"]["provider"] == "primary"
    assert raw.headers["x-gateway-provider"] == "primary"
    assert mock_upstream.last_request.path == "/v1/completions"
    assert mock_upstream.last_request.json["max_tokens"] == 20


def test_completion_stream_concatenates_to_answer(client, upstream):
    chunks = list(client.completions.create(model="gpt-4o-mini", prompt="stream this please", stream=True))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "mock: stream this please"
    assert all(c.usage is None for c in chunks)


def test_completion_stream_ends_with_done(live_gateway, proxy_world, upstream):
    response, payloads = stream_raw(
        live_gateway, proxy_world.member_raw, "/completions", {"model": "gpt-4o-mini", "prompt": "x", "stream": True}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0].strip() == "text/event-stream"
    assert payloads[-1] == "[DONE]"


# --------------------------------------------------------------------------- embeddings


def test_embedding_validates(client, embedder, mock_upstream):
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    body = raw.http_response.json()
    validate("CreateEmbeddingResponse", body)
    assert len(body["data"]) == 1
    assert all(isinstance(x, float) for x in body["data"][0]["embedding"])
    assert body["_proxy_info"]["provider"] == "embedder"
    assert mock_upstream.last_request.json["model"] == "text-embedding-3-small"


def test_embedding_list_input_gives_one_vector_per_item(client, embedder):
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"], encoding_format="float")
    assert [item.index for item in result.data] == [0, 1, 2]
    assert all(len(item.embedding) > 0 for item in result.data)
    assert result.data[0].embedding != result.data[1].embedding


# --------------------------------------------------------------------------- images


def test_image_generation_validates(client, imager, mock_upstream):
    raw = client.images.with_raw_response.generate(model="dall-e-3", prompt="a red cube", n=1, size="1024x1024")
    body = raw.http_response.json()
    validate("ImagesResponse", body)
    assert len(body["data"]) == 1
    assert body["data"][0].get("url") or body["data"][0].get("b64_json")
    assert raw.headers["x-gateway-provider"] == "imager"
    sent = mock_upstream.last_request
    assert sent.path == "/v1/images/generations"
    assert sent.json["model"] == "dall-e-3"
    assert sent.json["prompt"] == "a red cube"


# --------------------------------------------------------------------------- models


def test_models_list_validates_with_gateway_fields(client, upstream, embedder):
    raw = client.models.with_raw_response.list()
    body = raw.http_response.json()
    validate("ListModelsResponse", body)
    ids = [entry["id"] for entry in body["data"]]
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= set(ids)
    for entry in body["data"]:
        assert {"id", "object", "created", "owned_by", "provider_type", "status", "enabled"} <= set(entry)
        assert entry["object"] == "model"
        assert isinstance(entry["created"], int)
        assert isinstance(entry["owned_by"], str)
        assert entry["provider_type"] == "openai_compatible"
        assert entry["status"] in ("healthy", "degraded", "unhealthy")
        assert entry["enabled"] is True


def test_models_list_only_shows_allowed_models(restricted_client, upstream, embedder):
    ids = [model.id for model in restricted_client.models.list()]
    assert ids == ["gpt-4o-mini"]


@pytest.mark.parametrize("model_id", ["llama3.1:8b", "meta/llama-3-70b"])
def test_model_retrieve_with_colon_or_slash(client, proxy_world, factory, mock_upstream, model_id):
    factory.make_provider(
        "local", type="ollama", base_url=mock_upstream.openai_base, models=["llama3.1:8b", "meta/llama-3-70b"]
    )
    raw = client.models.with_raw_response.retrieve(model_id)
    body = raw.http_response.json()
    validate("Model", body)
    assert body["id"] == model_id
    assert body["provider_type"] == "ollama"


def test_model_retrieve_unknown_is_404(client, upstream):
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.status_code == 404
    assert_error(caught.value.response.json(), "model_not_found", "model")


def test_model_retrieve_not_allowed_for_key_is_404(restricted_client, upstream, embedder):
    with pytest.raises(openai.NotFoundError):
        restricted_client.models.retrieve("text-embedding-3-small")


# --------------------------------------------------------------------------- /api/v1/generate


def generate(live_gateway, raw_key: str, **fields) -> httpx.Response:
    body = {"user_id": "u-1", "service": "billing", **fields}
    return httpx.post(live_gateway.url + "/api/v1/generate", json=body, headers=auth(raw_key), timeout=20)


def test_generate_answers_simple_form(live_gateway, proxy_world, upstream):
    response = generate(live_gateway, proxy_world.member_raw, prompt="hi there", model="gpt-4o-mini")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"content", "provider", "model", "input_tokens", "output_tokens", "cost_usd", "cached", "latency_ms"} <= set(
        body
    )
    assert body["content"] == "mock: hi there"
    assert body["provider"] == "primary"
    assert body["model"] == "gpt-4o-mini"
    assert isinstance(body["input_tokens"], int) and body["input_tokens"] > 0
    assert body["output_tokens"] == 3
    assert isinstance(body["cost_usd"], (int, float)) and body["cost_usd"] >= 0
    assert body["cached"] is False
    assert isinstance(body["latency_ms"], int) and body["latency_ms"] >= 0


def test_generate_sends_system_prompt_and_json_mode(live_gateway, proxy_world, upstream, mock_upstream):
    response = generate(
        live_gateway, proxy_world.member_raw, prompt="list colours", system="Answer in JSON.", json_mode=True,
        max_tokens=50, model="gpt-4o-mini",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    sent = mock_upstream.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "list colours"},
    ]
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["max_tokens"] == 50


@pytest.mark.parametrize("max_tokens", [0, 9000])
def test_generate_max_tokens_out_of_range_is_400(live_gateway, proxy_world, upstream, mock_upstream, max_tokens):
    response = generate(live_gateway, proxy_world.member_raw, prompt="hi", max_tokens=max_tokens)
    assert response.status_code == 400
    assert_error(response.json(), "invalid_request", "max_tokens")
    assert mock_upstream.requests == []


def test_generate_override_forces_provider_and_model(live_gateway, proxy_world, factory, upstream, mock_upstream):
    forced = factory.make_provider(
        "forced", base_url=mock_upstream.openai_base, models=["gpt-4o"], custom_headers={"x-route": "forced"}
    )
    Override.objects.create(user_id="u-special", service_name="billing", provider=forced, model="gpt-4o")
    response = generate(live_gateway, proxy_world.member_raw, user_id="u-special", prompt="hi", model="gpt-4o-mini")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["provider"] == "forced"
    assert body["model"] == "gpt-4o"
    assert mock_upstream.last_request.json["model"] == "gpt-4o"
    assert mock_upstream.last_request.headers["x-route"] == "forced"


def test_generate_override_is_scoped_to_its_service(live_gateway, proxy_world, factory, upstream, mock_upstream):
    forced = factory.make_provider("forced", base_url=mock_upstream.openai_base, models=["gpt-4o"])
    Override.objects.create(user_id="u-special", service_name="billing", provider=forced, model="gpt-4o")
    response = generate(
        live_gateway, proxy_world.member_raw, user_id="u-special", service="search", prompt="hi", model="gpt-4o-mini"
    )
    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "primary"
    assert mock_upstream.last_request.json["model"] == "gpt-4o-mini"


# --------------------------------------------------------------------------- echo provider (no mock upstream)


def test_echo_chat_answers_last_user_message_with_usage(client, echo_provider):
    raw = client.chat.completions.with_raw_response.create(
        model="echo",
        messages=[
            {"role": "system", "content": "You are a parrot"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "repeat these words"},
        ],
    )
    body = raw.http_response.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "repeat these words"
    usage = body["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["prompt_tokens"] >= 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert raw.headers["x-gateway-provider"] == "echo"


def test_echo_chat_streams_word_by_word_with_usage(client, echo_provider):
    chunks = list(
        client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "repeat these words"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["repeat ", "these ", "words"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 3


def test_echo_stream_chunks_validate(live_gateway, proxy_world, echo_provider):
    chunks = stream_chunks(
        live_gateway, proxy_world.member_raw, {"model": "echo", "messages": [{"role": "user", "content": "a b"}]}
    )
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert all(chunk.get("usage") is None for chunk in chunks)


# --------------------------------------------------------------------------- errors


def test_unknown_model_is_404_model_not_found(client, upstream):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    assert_error(caught.value.response.json(), "model_not_found", "model")


def test_model_not_allowed_for_key_is_403(restricted_client, upstream, embedder):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        restricted_client.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float")
    assert caught.value.status_code == 403
    assert_error(caught.value.response.json(), "model_not_allowed", "model")


def test_only_provider_disabled_is_503_provider_unavailable(client, factory, mock_upstream, proxy_world):
    factory.make_provider("off", base_url=mock_upstream.openai_base, is_enabled=False)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert_error(caught.value.response.json(), "provider_unavailable", ANY_PARAM)
    assert mock_upstream.requests == []


def test_wrong_method_is_405(live_gateway, proxy_world, upstream):
    response = httpx.get(live_gateway.v1 + "/chat/completions", headers=auth(proxy_world.member_raw), timeout=20)
    assert response.status_code == 405
    assert_error(response.json(), "method_not_allowed")


def test_malformed_json_is_400_invalid_request(live_gateway, proxy_world, upstream, mock_upstream):
    response = httpx.post(
        live_gateway.v1 + "/chat/completions",
        content=b'{"model": "gpt-4o-mini", "messages": [',
        headers={**auth(proxy_world.member_raw), "content-type": "application/json"},
        timeout=20,
    )
    assert response.status_code == 400
    assert_error(response.json(), "invalid_request")
    assert mock_upstream.requests == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"logit_bias": {"50256": 101}}, "logit_bias"),
        ({"model": "bad model"}, "model"),
        ({"messages": [{"content": "no role"}]}, "messages[0].role"),
    ],
)
def test_invalid_chat_request_is_400_with_param(client, upstream, mock_upstream, fields, param):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.status_code == 400
    assert_error(caught.value.response.json(), "invalid_request", param)
    assert mock_upstream.requests == []
