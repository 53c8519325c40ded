"""The /v1/messages ingress translation: Anthropic requests to OpenAI chat, OpenAI
answers and chunks back to Anthropic Messages and SSE events."""

from __future__ import annotations

import json

import anthropic
import httpx2 as httpx  # both SDKs are built on httpx2 and reject plain httpx objects
import openai
import pydantic
import pytest

# The SDK's own stream accumulator (pinned SDK version): what its clients build from our events.
from anthropic.lib.streaming._messages import accumulate_event

from gateway.anthropic_ingress import (
    OpenAIToAnthropicStream,
    anthropic_to_openai_chat_request,
    openai_to_anthropic_response,
    sse_event,
)

RAW_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


# ---------------------------------------------------------------- Anthropic -> OpenAI request


def test_anthropic_request_to_openai():
    body = {
        "model": "gw-model",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "also this"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                ],
            },
            {"role": "user", "content": "plain"},
        ],
        "tools": [{"name": "weather", "description": "Get weather", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "top_p": 0.8,
        "top_k": 5,
        "metadata": {"user_id": "u-9"},
        "stream": True,
    }
    out = anthropic_to_openai_chat_request(body)
    assert out["model"] == "gw-model"
    assert out["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "user", "content": "also this"},
        {"role": "user", "content": "plain"},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Get weather", "parameters": WEATHER_SCHEMA},
        }
    ]
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert out["stop"] == ["END"]
    assert (out["max_tokens"], out["temperature"], out["top_p"], out["user"]) == (512, 0.2, 0.8, "u-9")
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "top_k" not in out and "metadata" not in out


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "weather"}, {"type": "function", "function": {"name": "weather"}}),
    ],
)
def test_anthropic_tool_choice_to_openai(choice, expected):
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    out = anthropic_to_openai_chat_request(body)
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out and "stream_options" not in out


def test_assistant_with_only_tool_use_has_null_content_and_string_system():
    body = {
        "model": "m",
        "max_tokens": 1,
        "system": "Sys",
        "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}],
    }
    out = anthropic_to_openai_chat_request(body)
    assert out["messages"][0] == {"role": "system", "content": "Sys"}
    assert out["messages"][1]["content"] is None
    assert out["messages"][1]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_converted_openai_request_is_accepted_by_openai_sdk_on_the_wire():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=_openai_completion())

    body = anthropic_to_openai_chat_request(
        {"model": "m", "max_tokens": 5, "system": "S", "messages": [{"role": "user", "content": "hi"}]}
    )
    client = openai.OpenAI(api_key="test", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    client.chat.completions.create(**body)
    assert seen["body"] == body


# ---------------------------------------------------------------- OpenAI -> Anthropic response


def _openai_completion(**message_overrides) -> dict:
    message = {"role": "assistant", "content": "Hi there", "refusal": None}
    message.update(message_overrides.pop("message", {}))
    resp = {
        "id": "chatcmpl-XYZ",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 8,
            "total_tokens": 58,
            "prompt_tokens_details": {"cached_tokens": 20},
        },
    }
    resp.update(message_overrides)
    return resp


def test_openai_text_response_to_anthropic():
    out = openai_to_anthropic_response(_openai_completion(), "claude-alias")
    msg = anthropic.types.Message.model_validate(out)
    assert out["id"] == "msg_XYZ"
    assert msg.content[0].text == "Hi there"
    assert msg.stop_reason == "end_turn"
    assert msg.model == "claude-alias"
    assert out["usage"] == {
        "input_tokens": 30,
        "output_tokens": 8,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 0,
    }


def test_openai_tool_call_response_to_anthropic():
    resp = _openai_completion(
        message={
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "broken", "arguments": "{not json"}},
            ],
        }
    )
    resp["choices"][0]["finish_reason"] = "tool_calls"
    out = openai_to_anthropic_response(resp, "m")
    msg = anthropic.types.Message.model_validate(out)
    assert [b.type for b in msg.content] == ["tool_use", "tool_use"]
    assert msg.content[0].input == {"city": "Rome"} and msg.content[0].id == "call_1"
    assert msg.content[1].input == {}
    assert msg.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_openai_finish_reason_mapping(finish, stop_reason):
    resp = _openai_completion()
    resp["choices"][0]["finish_reason"] = finish
    assert openai_to_anthropic_response(resp, "m")["stop_reason"] == stop_reason


def test_openai_response_without_usage():
    resp = _openai_completion()
    del resp["usage"]
    out = openai_to_anthropic_response(resp, "m")
    anthropic.types.Message.model_validate(out)
    assert out["usage"]["input_tokens"] == 0


def test_openai_response_through_anthropic_sdk_on_the_wire():
    converted = openai_to_anthropic_response(_openai_completion(), "claude-alias")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=converted))
    client = anthropic.Anthropic(api_key="test", http_client=httpx.Client(transport=transport))
    msg = client.messages.create(model="claude-alias", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "Hi there"
    assert msg.usage.cache_read_input_tokens == 20


# ---------------------------------------------------------------- OpenAI stream -> Anthropic events


def _chunk(
    delta: dict | None = None, finish: str | None = None, usage: dict | None = None, choices: bool = True
) -> dict:
    chunk = {"id": "chatcmpl-STREAM", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-x"}
    chunk["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}] if choices else []
    )
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def _tool_delta(index: int, args: str, call_id: str | None = None, name: str | None = None) -> dict:
    call: dict = {"index": index, "function": {"arguments": args}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


USAGE_CHUNK = {
    "prompt_tokens": 40,
    "completion_tokens": 11,
    "total_tokens": 51,
    "prompt_tokens_details": {"cached_tokens": 10},
}


def _run_openai_stream(chunks: list[dict], **kwargs) -> tuple[OpenAIToAnthropicStream, list[tuple[str, dict]]]:
    conv = OpenAIToAnthropicStream("claude-alias", **kwargs)
    events = [e for c in chunks for e in conv.feed(c)] + conv.finish()
    for name, data in events:
        assert data["type"] == name
        RAW_EVENT.validate_python(data)
    return conv, events


def _accumulate(events: list[tuple[str, dict]]):
    snapshot = None
    bufs: dict[int, bytes] = {}
    for _, data in events:
        snapshot = accumulate_event(event=RAW_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def _sdk_stream_final_message(events: list[tuple[str, dict]]):
    """Replay events as real SSE bytes through the SDK's own MessageStream."""
    payload = b"".join(sse_event(name, data) for name, data in events)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=payload)
    )
    client = anthropic.Anthropic(api_key="test", http_client=httpx.Client(transport=transport))
    with client.messages.stream(
        model="claude-alias", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        return text, stream.get_final_message()


def test_openai_stream_text_only():
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hello"}),
        _chunk({"content": ", world"}),
        _chunk({}, finish="stop"),
        _chunk(usage=USAGE_CHUNK, choices=False),
    ]
    conv, events = _run_openai_stream(chunks, input_tokens_hint=7)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["usage"] == {"input_tokens": 7, "output_tokens": 0}
    assert events[0][1]["message"]["id"] == "msg_STREAM"
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"]["output_tokens"] == 11
    assert conv.usage == USAGE_CHUNK
    final = _accumulate(events)
    assert final.content[0].text == "Hello, world"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.cache_read_input_tokens) == (30, 11, 10)
    text, message = _sdk_stream_final_message(events)
    assert text == "Hello, world"
    assert message.content[0].text == "Hello, world"


def test_openai_stream_text_and_tool_calls():
    chunks = [
        _chunk({"role": "assistant", "content": "Checking"}),
        _chunk(_tool_delta(0, "", "call_A", "weather")),
        _chunk(_tool_delta(0, '{"city":')),
        _chunk(_tool_delta(0, '"Paris"}')),
        _chunk(_tool_delta(1, '{"tz":"CET"}', "call_B", "time")),
        _chunk({}, finish="tool_calls"),
        _chunk(usage=USAGE_CHUNK, choices=False),
    ]
    _, events = _run_openai_stream(chunks)
    starts = [d for n, d in events if n == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1, 2]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_A", "name": "weather", "input": {}}
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    final = _accumulate(events)
    assert final.content[0].text == "Checking"
    assert (final.content[1].name, final.content[1].input) == ("weather", {"city": "Paris"})
    assert (final.content[2].id, final.content[2].input) == ("call_B", {"tz": "CET"})
    assert final.stop_reason == "tool_use"
    _, message = _sdk_stream_final_message(events)
    assert message.content[1].input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


def test_openai_stream_tool_calls_with_stop_finish_reason_become_tool_use():
    _, events = _run_openai_stream([_chunk(_tool_delta(0, "{}", "c", "f")), _chunk({}, finish="stop")])
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_openai_stream_finish_without_chunks():
    conv = OpenAIToAnthropicStream("claude-alias", input_tokens_hint=3)
    events = conv.finish()
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    for _, data in events:
        RAW_EVENT.validate_python(data)
    assert conv.finish() == []
    final = _accumulate(events)
    assert final.content == [] and final.usage.input_tokens == 3


def test_openai_stream_finish_after_truncated_stream_closes_open_block():
    conv = OpenAIToAnthropicStream("m")
    events = conv.feed(_chunk({"content": "partial"}))
    events += conv.finish()
    assert [n for n, _ in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert conv.usage is None
    assert events[-2][1]["usage"] == {"output_tokens": 0}


def test_openai_stream_interleaved_tool_arguments_raise():
    conv = OpenAIToAnthropicStream("m")
    conv.feed(_chunk(_tool_delta(0, "{", "a", "f")))
    conv.feed(_chunk(_tool_delta(1, "{", "b", "g")))
    with pytest.raises(ValueError):
        conv.feed(_chunk(_tool_delta(0, "}")))


def test_sse_event_format():
    assert sse_event("ping", {"type": "ping", "x": "é"}) == 'event: ping\ndata: {"type":"ping","x":"é"}\n\n'.encode()
