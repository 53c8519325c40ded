"""The Anthropic adapter's translation: OpenAI chat requests to Anthropic, Anthropic
answers and stream events back to OpenAI chat completions and chunks."""

from __future__ import annotations

import json

import anthropic
import httpx2 as httpx  # both SDKs are built on httpx2 and reject plain httpx objects
import pydantic
import pytest

# The SDK's own stream accumulator (pinned SDK version): what its clients build from our events.
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from providers.adapters.anthropic import (
    AnthropicStreamError,
    AnthropicToOpenAIStream,
    anthropic_to_openai_chat_response,
    anthropic_usage_to_openai,
    openai_chat_to_anthropic,
)

RAW_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


# ---------------------------------------------------------------- OpenAI -> Anthropic request


def test_system_and_developer_messages_become_top_level_system():
    body = {
        "model": "gw-model",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
        ],
    }
    out = openai_chat_to_anthropic(body, "claude-sonnet-4-5")
    assert out["model"] == "claude-sonnet-4-5"
    assert out["system"] == "You are terse.\n\nAnswer in French."
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["max_tokens"] == 4096


def test_no_system_key_without_system_messages():
    out = openai_chat_to_anthropic({"messages": [{"role": "user", "content": "x"}]}, "m")
    assert "system" not in out


def test_multipart_user_content_with_images():
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
                ],
            }
        ]
    }
    content = openai_chat_to_anthropic(body, "m")["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_non_base64_data_url_is_rejected():
    body = {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xx"}}]}]
    }
    with pytest.raises(ValueError):
        openai_chat_to_anthropic(body, "m")


def test_tools_tool_calls_and_tool_results_are_merged_into_alternating_turns():
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            {"role": "user", "content": "Thanks, which is warmer?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "weather", "description": "Get weather", "parameters": WEATHER_SCHEMA},
            },
            {"type": "function", "function": {"name": "noop"}},
        ],
    }
    out = openai_chat_to_anthropic(body, "m")
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
        {"type": "text", "text": "Thanks, which is warmer?"},
    ]
    assert out["tools"] == [
        {"name": "weather", "description": "Get weather", "input_schema": WEATHER_SCHEMA},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {"type": "auto"}


def test_consecutive_same_role_messages_merge():
    body = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    assert openai_chat_to_anthropic(body, "m")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_invalid_tool_call_arguments_raise():
    body = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
            }
        ]
    }
    with pytest.raises(ValueError, match="invalid JSON arguments"):
        openai_chat_to_anthropic(body, "m")


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "weather"}}, None, {"type": "tool", "name": "weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_mapping(choice, parallel, expected):
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "weather"}}],
    }
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert openai_chat_to_anthropic(body, "m")["tool_choice"] == expected


def test_sampling_params_and_dropped_fields():
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "max_completion_tokens": 100,
        "temperature": 1.7,
        "top_p": 0.9,
        "stop": "END",
        "user": "u-1",
        "stream": True,
        "n": 2,
        "seed": 1,
        "logit_bias": {"1": 2},
        "response_format": {"type": "json_object"},
        "stream_options": {"include_usage": True},
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "logprobs": True,
    }
    out = openai_chat_to_anthropic(body, "m")
    assert out == {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "temperature": 1,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    body2 = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 7, "stop": ["a", "b"], "temperature": 0.3}
    out2 = openai_chat_to_anthropic(body2, "m")
    assert (out2["max_tokens"], out2["stop_sequences"], out2["temperature"]) == (7, ["a", "b"], 0.3)


def test_converted_request_is_accepted_by_anthropic_sdk_on_the_wire():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=_anthropic_message())

    body = openai_chat_to_anthropic(
        {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": WEATHER_SCHEMA}}],
        },
        "claude-x",
    )
    client = anthropic.Anthropic(api_key="test", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    client.messages.create(**body)
    assert seen["body"] == body


# ---------------------------------------------------------------- Anthropic -> OpenAI response


def _anthropic_message(**overrides) -> dict:
    msg = {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    msg.update(overrides)
    return msg


def test_anthropic_text_response_to_openai():
    resp = _anthropic_message(
        content=[
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Hel"},
            {"type": "text", "text": "lo"},
        ]
    )
    out = anthropic_to_openai_chat_response(resp, "gw-model")
    ChatCompletion.model_validate(out)
    assert out["id"] == "chatcmpl-msg_01ABC"
    assert out["object"] == "chat.completion"
    assert out["model"] == "gw-model"
    choice = out["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert out["usage"]["total_tokens"] == 15


def test_anthropic_tool_use_response_to_openai():
    resp = _anthropic_message(
        content=[{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
        stop_reason="tool_use",
    )
    out = anthropic_to_openai_chat_response(resp, "gw")
    parsed = ChatCompletion.model_validate(out)
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert parsed.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reason_mapping(stop_reason, finish):
    out = anthropic_to_openai_chat_response(_anthropic_message(stop_reason=stop_reason), "gw")
    assert out["choices"][0]["finish_reason"] == finish


def test_usage_with_cache_tokens():
    usage = {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
    assert anthropic_usage_to_openai(usage) == {
        "prompt_tokens": 130,
        "completion_tokens": 7,
        "total_tokens": 137,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
    }
    none_cache = {
        "input_tokens": 3,
        "output_tokens": 1,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
    }
    assert anthropic_usage_to_openai(none_cache)["prompt_tokens"] == 3
    assert anthropic_usage_to_openai({})["total_tokens"] == 0


# ---------------------------------------------------------------- Anthropic stream -> OpenAI chunks


def _anthropic_text_and_tool_events() -> list[tuple[str, dict]]:
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_S1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-x",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 12,
                        "output_tokens": 1,
                        "cache_read_input_tokens": 30,
                        "cache_creation_input_tokens": 0,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "let me"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me "}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "check."}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_A", "name": "weather", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'},
            },
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'ris"}'}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 3,
                "content_block": {"type": "tool_use", "id": "toolu_B", "name": "time", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 3}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 42},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def _run_anthropic_stream(events, **kwargs) -> tuple[AnthropicToOpenAIStream, list[dict]]:
    conv = AnthropicToOpenAIStream("gw-model", **kwargs)
    chunks = [c for name, data in events for c in conv.feed(name, data)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return conv, chunks


def test_anthropic_stream_text_only():
    events = [e for e in _anthropic_text_and_tool_events() if e[1].get("index") not in (2, 3)]
    events[-2] = (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
    )
    conv, chunks = _run_anthropic_stream(events)
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_S1"}
    assert len({c["created"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Let me check."
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 42,
        "completion_tokens": 9,
        "total_tokens": 51,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 0},
    }
    assert conv.finish_reason == "stop"


def test_anthropic_stream_text_and_tool_use():
    conv, chunks = _run_anthropic_stream(_anthropic_text_and_tool_events())
    tool_deltas = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    assert tool_deltas[0] == {
        "index": 0,
        "id": "toolu_A",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
    }
    assert tool_deltas[3] == {
        "index": 1,
        "id": "toolu_B",
        "type": "function",
        "function": {"name": "time", "arguments": ""},
    }
    args = {}
    for tc in tool_deltas:
        args[tc["index"]] = args.get(tc["index"], "") + tc["function"]["arguments"]
    assert json.loads(args[0]) == {"city": "Paris"} and json.loads(args[1]) == {}
    assert conv.finish_reason == "tool_calls"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert conv.usage["completion_tokens"] == 42


def test_anthropic_stream_without_include_usage_still_tracks_usage():
    conv, chunks = _run_anthropic_stream(_anthropic_text_and_tool_events(), include_usage=False)
    assert all(c["choices"] for c in chunks)
    assert conv.usage["prompt_tokens"] == 42 and conv.usage["completion_tokens"] == 42


def test_anthropic_stream_error_event_raises():
    conv = AnthropicToOpenAIStream("gw")
    data = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(AnthropicStreamError) as exc:
        conv.feed("error", data)
    assert exc.value.data == data
    assert exc.value.error_type == "overloaded_error"
    assert "Overloaded" in str(exc.value)
