"""Anthropic on either side of the live gateway: the official `anthropic` SDK
against /v1/messages, and the official `openai` SDK against an `anthropic`-type
provider (the real HTTP mock upstream speaking the Messages API)."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.openai_schema import validate

CLAUDE = "claude-gateway-test"
ANTHROPIC_UPSTREAM_KEY = "sk-ant-test-secret-1234"
ERROR_FIELDS = {"message", "type", "param", "code"}

ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": ANTHROPIC_TOOL["input_schema"],
    },
}


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def claude(live_gateway, proxy_world) -> anthropic.Anthropic:
    """The Anthropic SDK pointed at the gateway with the member's client key."""
    return anthropic.Anthropic(base_url=live_gateway.url, api_key=proxy_world.member_raw, max_retries=0, timeout=20)


@pytest.fixture
def anthropic_upstream(proxy_world, factory, mock_upstream):
    """An `anthropic`-type provider on the mock, serving claude-gateway-test."""
    return factory.make_provider(
        "claude", type="anthropic", base_url=mock_upstream.url, models=[CLAUDE], api_key=ANTHROPIC_UPSTREAM_KEY
    )


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def tool_use_turns(block) -> list[dict]:
    """The assistant tool_use turn and the user tool_result turn that answer it."""
    return [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18C and sunny"}]},
    ]


def openai_stream_chunks(live_gateway, raw_key: str, body: dict) -> list[dict]:
    """Raw chunk objects of a /v1/chat/completions stream (ending `data: [DONE]`)."""
    with httpx.Client(timeout=20) as http:
        with http.stream(
            "POST",
            live_gateway.v1 + "/chat/completions",
            json={**body, "stream": True},
            headers={"Authorization": f"Bearer {raw_key}"},
        ) as response:
            text = response.read().decode()
    assert response.status_code == 200, text
    assert response.headers["content-type"].split(";")[0].strip() == "text/event-stream"
    payloads = [block.removeprefix("data: ") for block in text.split("\n\n") if block.strip()]
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def assert_anthropic_error(body: dict, code: str) -> dict:
    assert set(body) == {"type", "error"}, body
    assert body["type"] == "error"
    error = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] == code, error
    return error


# --------------------------------------------------------------------------- Anthropic SDK -> OpenAI upstream


def test_messages_create_answers_from_openai_upstream(claude, upstream, mock_upstream):
    message = claude.messages.create(
        model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "hello claude"}]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "gpt-4o-mini"
    assert [block.type for block in message.content] == ["text"]
    assert text_of(message) == "mock: hello claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == 3
    assert mock_upstream.last_request.path == "/v1/chat/completions"
    assert mock_upstream.last_request.json["max_tokens"] == 100


def test_messages_stream_gives_same_text_from_openai_upstream(claude, upstream):
    with claude.messages.stream(
        model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "stream to me"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "mock: stream to me"
    assert text_of(final) == "mock: stream to me"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


def test_messages_tool_use_round_trip_through_openai_upstream(claude, upstream, mock_upstream):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = claude.messages.create(model="gpt-4o-mini", max_tokens=100, messages=messages, tools=[ANTHROPIC_TOOL])
    assert first.stop_reason == "tool_use"
    blocks = [block for block in first.content if block.type == "tool_use"]
    assert len(blocks) == 1
    assert blocks[0].name == "get_weather"
    assert blocks[0].input == {"location": "Paris"}
    assert mock_upstream.last_request.json["tools"] == [OPENAI_TOOL]

    second = claude.messages.create(
        model="gpt-4o-mini", max_tokens=100, messages=messages + tool_use_turns(blocks[0]), tools=[ANTHROPIC_TOOL]
    )
    assert second.stop_reason == "end_turn"
    assert text_of(second) == "mock: What's the weather in Paris?"
    sent = mock_upstream.last_request.json["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": blocks[0].id, "content": "18C and sunny"}


def test_messages_stream_tool_use_through_openai_upstream(claude, upstream):
    with claude.messages.stream(
        model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "weather?"}], tools=[ANTHROPIC_TOOL]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    blocks = [block for block in final.content if block.type == "tool_use"]
    assert [(b.name, b.input) for b in blocks] == [("get_weather", {"location": "Paris"})]


def test_messages_system_prompt_reaches_openai_upstream_as_system_message(claude, upstream, mock_upstream):
    claude.messages.create(
        model="gpt-4o-mini", max_tokens=50, system="You are terse.", messages=[{"role": "user", "content": "hi"}]
    )
    assert mock_upstream.last_request.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]


# --------------------------------------------------------------------------- OpenAI SDK -> Anthropic upstream


def test_chat_through_anthropic_upstream_validates(client, anthropic_upstream):
    raw = client.chat.completions.with_raw_response.create(
        model=CLAUDE, messages=[{"role": "user", "content": "hello from openai"}]
    )
    body = raw.http_response.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "mock: hello from openai"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 4
    assert body["_proxy_info"]["provider"] == "claude"
    assert raw.headers["x-gateway-provider"] == "claude"


def test_chat_stream_through_anthropic_upstream_validates_and_concatenates(
    live_gateway, proxy_world, anthropic_upstream
):
    chunks = openai_stream_chunks(
        live_gateway, proxy_world.member_raw, {"model": CLAUDE, "messages": [{"role": "user", "content": "a b c"}]}
    )
    assert chunks
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "mock: a b c"
    assert all(chunk.get("usage") is None for chunk in chunks)


def test_chat_stream_through_anthropic_upstream_reports_usage_when_asked(client, anthropic_upstream):
    chunks = list(
        client.chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": "a b c"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock: a b c"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.prompt_tokens > 0


def test_chat_tool_round_trip_through_anthropic_upstream(client, anthropic_upstream, mock_upstream):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[OPENAI_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "Paris"}
    assert mock_upstream.last_request.json["tools"] == [ANTHROPIC_TOOL]

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[OPENAI_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "mock: What's the weather in Paris?"
    sent = mock_upstream.last_request.json["messages"]
    assert sent[-1]["role"] == "user"
    assert sent[-1]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}
    assert sent[-2]["content"][0]["type"] == "tool_use"
    assert sent[-2]["content"][0]["input"] == {"location": "Paris"}


def test_chat_streamed_tool_call_through_anthropic_upstream(client, anthropic_upstream):
    stream = client.chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "weather?"}], tools=[OPENAI_TOOL], stream=True
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.index == 0
            if delta.function is not None:
                name += delta.function.name or ""
                arguments += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert name == "get_weather"
    assert json.loads(arguments) == {"location": "Paris"}


def test_anthropic_upstream_request_has_key_version_system_and_max_tokens(client, anthropic_upstream, mock_upstream):
    client.chat.completions.create(
        model=CLAUDE,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    )
    sent = mock_upstream.last_request
    assert sent.method == "POST"
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_UPSTREAM_KEY
    assert sent.headers["anthropic-version"]
    assert sent.json["model"] == CLAUDE
    assert sent.json["system"] == "Be brief."
    assert all(turn["role"] != "system" for turn in sent.json["messages"])
    assert isinstance(sent.json["max_tokens"], int) and sent.json["max_tokens"] >= 1


def test_anthropic_upstream_gets_client_max_tokens(client, anthropic_upstream, mock_upstream):
    client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}], max_tokens=77)
    assert mock_upstream.last_request.json["max_tokens"] == 77


# --------------------------------------------------------------------------- Anthropic SDK -> Anthropic upstream


def test_messages_create_through_anthropic_upstream(claude, anthropic_upstream, mock_upstream):
    message = claude.messages.create(
        model=CLAUDE, max_tokens=64, system="Be kind.", messages=[{"role": "user", "content": "both sides"}]
    )
    assert text_of(message) == "mock: both sides"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    sent = mock_upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.json["system"] == "Be kind."
    assert sent.json["max_tokens"] == 64


def test_messages_stream_through_anthropic_upstream(claude, anthropic_upstream):
    with claude.messages.stream(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "both sides streamed"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "mock: both sides streamed"
    assert text_of(final) == "mock: both sides streamed"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


# --------------------------------------------------------------------------- errors on /v1/messages


def test_messages_missing_max_tokens_is_400_anthropic_error(claude, upstream, mock_upstream):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="gpt-4o-mini", max_tokens=anthropic.omit, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 400
    error = assert_anthropic_error(caught.value.response.json(), "invalid_request")
    assert error["param"] == "max_tokens"
    assert mock_upstream.requests == []


def test_messages_unknown_model_is_404_anthropic_error(claude, upstream):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert_anthropic_error(caught.value.response.json(), "model_not_found")


def test_messages_bad_key_is_401_anthropic_error(live_gateway, upstream):
    bad = anthropic.Anthropic(base_url=live_gateway.url, api_key="not-a-real-key", max_retries=0, timeout=20)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert_anthropic_error(caught.value.response.json(), "invalid_api_key")


def test_messages_malformed_json_is_400_anthropic_error(live_gateway, proxy_world, upstream):
    response = httpx.post(
        live_gateway.v1 + "/messages",
        content=b'{"model": ',
        headers={"x-api-key": proxy_world.member_raw, "content-type": "application/json"},
        timeout=20,
    )
    assert response.status_code == 400
    assert_anthropic_error(response.json(), "invalid_request")


def test_messages_wrong_method_is_405_anthropic_error(live_gateway, proxy_world, upstream):
    response = httpx.get(live_gateway.v1 + "/messages", headers={"x-api-key": proxy_world.member_raw}, timeout=20)
    assert response.status_code == 405
    assert_anthropic_error(response.json(), "method_not_allowed")


def test_messages_body_too_large_is_413_anthropic_error(live_gateway, proxy_world, upstream, settings):
    settings.MAX_REQUEST_BYTES = 1024
    body = {"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 4096}]}
    response = httpx.post(
        live_gateway.v1 + "/messages", json=body, headers={"x-api-key": proxy_world.member_raw}, timeout=20
    )
    assert response.status_code == 413
    assert_anthropic_error(response.json(), "request_too_large")
