from __future__ import annotations

import pytest

from core.errors import GatewayError
from gateway.endpoints import ENDPOINTS
from gateway.validation import parse_json_object, validate_generate

USER = {"role": "user", "content": "hi"}
CHAT = {"model": "gpt-4o-mini", "messages": [USER]}
COMPLETIONS = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}
EMBEDDINGS = {"model": "text-embedding-3-small", "input": "hello"}
IMAGES = {"prompt": "a cat"}
MESSAGES = {"model": "claude-3-5-sonnet-latest", "max_tokens": 100, "messages": [USER]}
GENERATE = {"user_id": "u1", "service": "svc", "prompt": "hi"}
# Each endpoint's validator, as the endpoint table declares it.
VALIDATORS = {name: endpoint.validate for name, endpoint in ENDPOINTS.items() if endpoint.validate}

BASE = {
    "chat": CHAT,
    "completions": COMPLETIONS,
    "embeddings": EMBEDDINGS,
    "images": IMAGES,
    "messages": MESSAGES,
    "generate": GENERATE,
}

TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def body(endpoint: str, **changes) -> dict:
    """The endpoint's minimal valid body with `changes` applied; a value of ... removes the field."""
    out = dict(BASE[endpoint])
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def chat_msgs(*messages) -> dict:
    return body("chat", messages=[USER, *messages])


def anthropic_msgs(*messages) -> dict:
    return body("messages", messages=list(messages))


VALID = [
    # chat
    ("chat", CHAT),
    ("chat", body("chat", model="openai/gpt-4o:latest_v1.2")),
    ("chat", body("chat", model="a" * 100)),
    (
        "chat",
        chat_msgs(
            {"role": "assistant", "tool_calls": [TOOL_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "assistant", "content": "done"},
        ),
    ),
    (
        "chat",
        body(
            "chat",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "x"}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
                {"role": "function", "name": "f", "content": "1"},
            ],
        ),
    ),
    (
        "chat",
        body(
            "chat",
            temperature=0,
            top_p=1,
            max_tokens=1,
            max_completion_tokens=10,
            n=128,
            presence_penalty=-2,
            frequency_penalty=2.0,
            logit_bias={"50256": -100, "1": 100, "2": 0.5},
            stream=True,
            stream_options={"include_usage": True},
            stop=["a", "b", "c", "d"],
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                {"type": "web_search"},
            ],
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            response_format={"type": "json_object"},
            seed=-7,
            user="end-user-1",
            logprobs=True,
            top_logprobs=20,
        ),
    ),
    ("chat", body("chat", temperature=2, top_p=0.0, n=1, stop="\n", tool_choice="required", top_logprobs=0)),
    ("chat", body("chat", stream_options={}, tool_choice="none", stop=[])),
    # null optional fields are treated as absent
    ("chat", body("chat", temperature=None, max_tokens=None, stop=None, tools=None, user=None)),
    # unknown fields are forwarded, not rejected
    ("chat", body("chat", reasoning_effort="low", metadata={"x": 1}, store=True, _custom=[1])),
    # completions
    ("completions", COMPLETIONS),
    ("completions", body("completions", prompt=["a", "b"])),
    ("completions", body("completions", prompt=[1, 2, 3])),
    ("completions", body("completions", prompt=[[1, 2], [3]])),
    (
        "completions",
        body(
            "completions",
            echo=True,
            best_of=2,
            suffix="end",
            temperature=1.5,
            top_p=0.5,
            max_tokens=16,
            n=2,
            stream=False,
            stop=["x"],
            logit_bias={"1": 1},
            presence_penalty=0,
            frequency_penalty=-1.5,
            extra_field="ok",
        ),
    ),
    # embeddings
    ("embeddings", EMBEDDINGS),
    ("embeddings", body("embeddings", input=["a", "b"], encoding_format="base64", dimensions=256, user="u")),
    ("embeddings", body("embeddings", input=[1, 2, 3], encoding_format="float")),
    ("embeddings", body("embeddings", input=[[1, 2], [3]])),
    ("embeddings", body("embeddings", input=["x"] * 2048)),
    # images
    ("images", IMAGES),
    (
        "images",
        body(
            "images",
            model="dall-e-3",
            n=10,
            size="1024x1024",
            quality="hd",
            response_format="b64_json",
            style="vivid",
            user="u",
        ),
    ),
    ("images", body("images", n=1, response_format="url", model=None)),
    # anthropic messages
    ("messages", MESSAGES),
    (
        "messages",
        anthropic_msgs(
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ),
    ),
    (
        "messages",
        body(
            "messages",
            system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            temperature=1,
            top_p=0,
            top_k=0,
            stop_sequences=["END"],
            stream=True,
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "f"},
            metadata={"user_id": "u"},
            thinking={"type": "disabled"},
        ),
    ),
    ("messages", body("messages", system="be brief", tool_choice={"type": "auto"}, temperature=0.0)),
    ("messages", body("messages", tool_choice={"type": "any"}, top_k=40)),
    ("messages", body("messages", tool_choice={"type": "none"})),
    # generate
    ("generate", GENERATE),
    (
        "generate",
        body(
            "generate",
            task_type="summary",
            system="s",
            max_tokens=8000,
            temperature=2,
            json_mode=True,
            model="gpt-4o",
            user_id="u" * 100,
            service="s" * 100,
        ),
    ),
    ("generate", body("generate", max_tokens=1, temperature=0)),
]


@pytest.mark.parametrize(("endpoint", "data"), VALID)
def test_valid_bodies_pass(endpoint, data):
    VALIDATORS[endpoint](data)


INVALID = [
    # --- chat: model ---
    ("chat", body("chat", model=...), "model"),
    ("chat", body("chat", model=None), "model"),
    ("chat", body("chat", model=""), "model"),
    ("chat", body("chat", model="bad model"), "model"),
    ("chat", body("chat", model="a" * 101), "model"),
    ("chat", body("chat", model="gpt-4\n"), "model"),
    ("chat", body("chat", model="gpt-4?x"), "model"),
    ("chat", body("chat", model=5), "model"),
    # --- chat: messages ---
    ("chat", body("chat", messages=...), "messages"),
    ("chat", body("chat", messages=[]), "messages"),
    ("chat", body("chat", messages="hi"), "messages"),
    ("chat", body("chat", messages={"role": "user"}), "messages"),
    ("chat", body("chat", messages=[USER] * 10001), "messages"),
    ("chat", chat_msgs("hi"), "messages[1]"),
    ("chat", chat_msgs({"content": "x"}), "messages[1].role"),
    ("chat", chat_msgs({"role": "robot", "content": "x"}), "messages[1].role"),
    ("chat", chat_msgs({"role": 1, "content": "x"}), "messages[1].role"),
    ("chat", chat_msgs({"role": "user"}), "messages[1].content"),
    ("chat", chat_msgs({"role": "user", "content": None}), "messages[1].content"),
    ("chat", chat_msgs({"role": "system"}), "messages[1].content"),
    ("chat", chat_msgs({"role": "assistant"}), "messages[1].content"),
    ("chat", chat_msgs({"role": "assistant", "content": None}), "messages[1].content"),
    ("chat", chat_msgs({"role": "assistant", "tool_calls": []}), "messages[1].content"),
    ("chat", chat_msgs({"role": "assistant", "tool_calls": "call"}), "messages[1].tool_calls"),
    ("chat", chat_msgs({"role": "user", "content": 42}), "messages[1].content"),
    ("chat", chat_msgs({"role": "user", "content": {"type": "text"}}), "messages[1].content"),
    ("chat", chat_msgs({"role": "user", "content": ["text"]}), "messages[1].content[0]"),
    (
        "chat",
        chat_msgs({"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "no type"}]}),
        "messages[1].content[1]",
    ),
    ("chat", chat_msgs({"role": "user", "content": [{"type": 3}]}), "messages[1].content[0]"),
    ("chat", chat_msgs({"role": "tool", "content": "42"}), "messages[1].tool_call_id"),
    ("chat", chat_msgs({"role": "tool", "content": "42", "tool_call_id": 1}), "messages[1].tool_call_id"),
    ("chat", chat_msgs({"role": "tool", "tool_call_id": "c"}), "messages[1].content"),
    # --- chat: numeric ranges, edges just outside, wrong types, bools ---
    ("chat", body("chat", temperature=-0.01), "temperature"),
    ("chat", body("chat", temperature=2.01), "temperature"),
    ("chat", body("chat", temperature="1"), "temperature"),
    ("chat", body("chat", temperature=True), "temperature"),
    ("chat", body("chat", temperature=float("nan")), "temperature"),
    ("chat", body("chat", top_p=-0.1), "top_p"),
    ("chat", body("chat", top_p=1.01), "top_p"),
    ("chat", body("chat", top_p=True), "top_p"),
    ("chat", body("chat", max_tokens=0), "max_tokens"),
    ("chat", body("chat", max_tokens=-5), "max_tokens"),
    ("chat", body("chat", max_tokens=10.0), "max_tokens"),
    ("chat", body("chat", max_tokens=True), "max_tokens"),
    ("chat", body("chat", max_tokens="100"), "max_tokens"),
    ("chat", body("chat", max_completion_tokens=0), "max_completion_tokens"),
    ("chat", body("chat", max_completion_tokens=False), "max_completion_tokens"),
    ("chat", body("chat", n=0), "n"),
    ("chat", body("chat", n=129), "n"),
    ("chat", body("chat", n=True), "n"),
    ("chat", body("chat", n=1.5), "n"),
    ("chat", body("chat", presence_penalty=-2.01), "presence_penalty"),
    ("chat", body("chat", presence_penalty=2.01), "presence_penalty"),
    ("chat", body("chat", presence_penalty=False), "presence_penalty"),
    ("chat", body("chat", frequency_penalty=-2.01), "frequency_penalty"),
    ("chat", body("chat", frequency_penalty=2.01), "frequency_penalty"),
    ("chat", body("chat", frequency_penalty="0"), "frequency_penalty"),
    ("chat", body("chat", logit_bias=[1, 2]), "logit_bias"),
    ("chat", body("chat", logit_bias={"1": -100.5}), "logit_bias"),
    ("chat", body("chat", logit_bias={"1": 101}), "logit_bias"),
    ("chat", body("chat", logit_bias={"1": "5"}), "logit_bias"),
    ("chat", body("chat", logit_bias={"1": True}), "logit_bias"),
    ("chat", body("chat", logit_bias={1: 5}), "logit_bias"),
    ("chat", body("chat", stream="true"), "stream"),
    ("chat", body("chat", stream=1), "stream"),
    ("chat", body("chat", stream_options=True), "stream_options"),
    ("chat", body("chat", stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
    ("chat", body("chat", stop=5), "stop"),
    ("chat", body("chat", stop=["a", "b", "c", "d", "e"]), "stop"),
    ("chat", body("chat", stop=["a", 1]), "stop"),
    ("chat", body("chat", tools={"type": "function"}), "tools"),
    ("chat", body("chat", tools=["f"]), "tools[0]"),
    ("chat", body("chat", tools=[{"function": {"name": "f"}}]), "tools[0].type"),
    ("chat", body("chat", tools=[{"type": "function"}]), "tools[0].function"),
    ("chat", body("chat", tools=[{"type": "function", "function": "f"}]), "tools[0].function"),
    ("chat", body("chat", tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
    (
        "chat",
        body("chat", tools=[{"type": "web_search"}, {"type": "function", "function": {"name": 1}}]),
        "tools[1].function.name",
    ),
    ("chat", body("chat", tool_choice="always"), "tool_choice"),
    ("chat", body("chat", tool_choice=["auto"]), "tool_choice"),
    ("chat", body("chat", tool_choice=True), "tool_choice"),
    ("chat", body("chat", parallel_tool_calls="yes"), "parallel_tool_calls"),
    ("chat", body("chat", response_format="json"), "response_format"),
    ("chat", body("chat", response_format={}), "response_format.type"),
    ("chat", body("chat", response_format={"type": 1}), "response_format.type"),
    ("chat", body("chat", seed=1.5), "seed"),
    ("chat", body("chat", seed=True), "seed"),
    ("chat", body("chat", user=123), "user"),
    ("chat", body("chat", logprobs="true"), "logprobs"),
    ("chat", body("chat", top_logprobs=-1), "top_logprobs"),
    ("chat", body("chat", top_logprobs=21), "top_logprobs"),
    ("chat", body("chat", top_logprobs=True), "top_logprobs"),
    # --- completions ---
    ("completions", body("completions", model=...), "model"),
    ("completions", body("completions", model="bad model"), "model"),
    ("completions", body("completions", prompt=...), "prompt"),
    ("completions", body("completions", prompt=None), "prompt"),
    ("completions", body("completions", prompt=[]), "prompt"),
    ("completions", body("completions", prompt=5), "prompt"),
    ("completions", body("completions", prompt=["a", 1]), "prompt"),
    ("completions", body("completions", prompt=[1, True]), "prompt"),
    ("completions", body("completions", prompt=[[1], ["a"]]), "prompt"),
    ("completions", body("completions", prompt={"text": "a"}), "prompt"),
    ("completions", body("completions", temperature=2.5), "temperature"),
    ("completions", body("completions", top_p=-1), "top_p"),
    ("completions", body("completions", max_tokens=0), "max_tokens"),
    ("completions", body("completions", n=129), "n"),
    ("completions", body("completions", stream="no"), "stream"),
    ("completions", body("completions", stop=["1", "2", "3", "4", "5"]), "stop"),
    ("completions", body("completions", logit_bias={"1": 100.1}), "logit_bias"),
    ("completions", body("completions", presence_penalty=3), "presence_penalty"),
    ("completions", body("completions", frequency_penalty=-3), "frequency_penalty"),
    ("completions", body("completions", echo="yes"), "echo"),
    ("completions", body("completions", best_of=0), "best_of"),
    ("completions", body("completions", best_of=True), "best_of"),
    ("completions", body("completions", suffix=1), "suffix"),
    # --- embeddings ---
    ("embeddings", body("embeddings", model=...), "model"),
    ("embeddings", body("embeddings", model="a" * 101), "model"),
    ("embeddings", body("embeddings", input=...), "input"),
    ("embeddings", body("embeddings", input=""), "input"),
    ("embeddings", body("embeddings", input=[]), "input"),
    ("embeddings", body("embeddings", input=[""]), "input"),
    ("embeddings", body("embeddings", input=[[]]), "input"),
    ("embeddings", body("embeddings", input=["a", 1]), "input"),
    ("embeddings", body("embeddings", input=[True]), "input"),
    ("embeddings", body("embeddings", input=5), "input"),
    ("embeddings", body("embeddings", input=["x"] * 2049), "input"),
    ("embeddings", body("embeddings", encoding_format="int8"), "encoding_format"),
    ("embeddings", body("embeddings", dimensions=0), "dimensions"),
    ("embeddings", body("embeddings", dimensions=True), "dimensions"),
    ("embeddings", body("embeddings", user=["u"]), "user"),
    # --- images ---
    ("images", body("images", prompt=...), "prompt"),
    ("images", body("images", prompt=""), "prompt"),
    ("images", body("images", prompt=["a cat"]), "prompt"),
    ("images", body("images", model=""), "model"),
    ("images", body("images", model="bad model"), "model"),
    ("images", body("images", model="a" * 101), "model"),
    ("images", body("images", n=0), "n"),
    ("images", body("images", n=11), "n"),
    ("images", body("images", n=True), "n"),
    ("images", body("images", size=1024), "size"),
    ("images", body("images", quality=True), "quality"),
    ("images", body("images", response_format="png"), "response_format"),
    ("images", body("images", style=1), "style"),
    ("images", body("images", user=1), "user"),
    # --- anthropic messages ---
    ("messages", body("messages", model=...), "model"),
    ("messages", body("messages", model="bad model"), "model"),
    ("messages", body("messages", model=""), "model"),
    ("messages", body("messages", max_tokens=...), "max_tokens"),
    ("messages", body("messages", max_tokens=0), "max_tokens"),
    ("messages", body("messages", max_tokens=True), "max_tokens"),
    ("messages", body("messages", max_tokens=1.5), "max_tokens"),
    ("messages", body("messages", messages=...), "messages"),
    ("messages", body("messages", messages=[]), "messages"),
    ("messages", anthropic_msgs("hi"), "messages[0]"),
    ("messages", anthropic_msgs({"role": "system", "content": "x"}), "messages[0].role"),
    ("messages", anthropic_msgs(USER, {"content": "x"}), "messages[1].role"),
    ("messages", anthropic_msgs({"role": "user"}), "messages[0].content"),
    ("messages", anthropic_msgs({"role": "user", "content": []}), "messages[0].content"),
    ("messages", anthropic_msgs({"role": "user", "content": 1}), "messages[0].content"),
    ("messages", anthropic_msgs({"role": "user", "content": [{"text": "x"}]}), "messages[0].content[0]"),
    ("messages", anthropic_msgs({"role": "user", "content": ["x"]}), "messages[0].content[0]"),
    ("messages", body("messages", system=1), "system"),
    ("messages", body("messages", system=[{"type": "image"}]), "system[0]"),
    ("messages", body("messages", system=[{"type": "text", "text": 1}]), "system[0]"),
    ("messages", body("messages", system=["x"]), "system[0]"),
    ("messages", body("messages", temperature=-0.01), "temperature"),
    ("messages", body("messages", temperature=1.01), "temperature"),
    ("messages", body("messages", temperature=True), "temperature"),
    ("messages", body("messages", top_p=-0.01), "top_p"),
    ("messages", body("messages", top_p=1.01), "top_p"),
    ("messages", body("messages", top_k=-1), "top_k"),
    ("messages", body("messages", top_k=True), "top_k"),
    ("messages", body("messages", top_k=1.5), "top_k"),
    ("messages", body("messages", stop_sequences="END"), "stop_sequences"),
    ("messages", body("messages", stop_sequences=["END", 1]), "stop_sequences"),
    ("messages", body("messages", stream="yes"), "stream"),
    ("messages", body("messages", tools={"name": "f"}), "tools"),
    ("messages", body("messages", tools=["f"]), "tools[0]"),
    ("messages", body("messages", tools=[{"input_schema": {}}]), "tools[0].name"),
    ("messages", body("messages", tool_choice="auto"), "tool_choice"),
    ("messages", body("messages", tool_choice={}), "tool_choice.type"),
    ("messages", body("messages", tool_choice={"type": "required"}), "tool_choice.type"),
    ("messages", body("messages", tool_choice={"type": "tool"}), "tool_choice.name"),
    ("messages", body("messages", metadata="u"), "metadata"),
    # --- generate ---
    ("generate", body("generate", user_id=...), "user_id"),
    ("generate", body("generate", user_id=""), "user_id"),
    ("generate", body("generate", user_id="u" * 101), "user_id"),
    ("generate", body("generate", user_id=7), "user_id"),
    ("generate", body("generate", service=...), "service"),
    ("generate", body("generate", service=""), "service"),
    ("generate", body("generate", service="s" * 101), "service"),
    ("generate", body("generate", task_type=1), "task_type"),
    ("generate", body("generate", prompt=...), "prompt"),
    ("generate", body("generate", prompt=""), "prompt"),
    ("generate", body("generate", prompt=["hi"]), "prompt"),
    ("generate", body("generate", system=1), "system"),
    ("generate", body("generate", max_tokens=0), "max_tokens"),
    ("generate", body("generate", max_tokens=8001), "max_tokens"),
    ("generate", body("generate", max_tokens=True), "max_tokens"),
    ("generate", body("generate", max_tokens="100"), "max_tokens"),
    ("generate", body("generate", temperature=-0.01), "temperature"),
    ("generate", body("generate", temperature=2.01), "temperature"),
    ("generate", body("generate", temperature=False), "temperature"),
    ("generate", body("generate", json_mode="true"), "json_mode"),
    ("generate", body("generate", json_mode=0), "json_mode"),
    ("generate", body("generate", model="bad model"), "model"),
    ("generate", body("generate", model=""), "model"),
    ("generate", body("generate", model="a" * 101), "model"),
]


@pytest.mark.parametrize(("endpoint", "data", "param"), INVALID)
def test_invalid_bodies_raise_400_with_param(endpoint, data, param):
    with pytest.raises(GatewayError) as info:
        VALIDATORS[endpoint](data)
    err = info.value
    assert (err.status, err.code, err.param) == (400, "invalid_request", param)
    assert err.type == "invalid_request_error"
    assert param.split("[")[0].split(".")[0] in err.message
    assert len(err.message) < 200  # values are never echoed back


def test_messages_name_the_field_and_rule():
    with pytest.raises(GatewayError) as info:
        VALIDATORS["chat"](body("chat", temperature=3))
    assert info.value.message == "temperature must be a number between 0 and 2"
    with pytest.raises(GatewayError) as info:
        VALIDATORS["chat"](chat_msgs({"role": "user", "content": 1}, USER))
    assert info.value.param == "messages[1].content"
    assert "messages[1].content" in info.value.message


def test_huge_values_are_not_echoed():
    huge = "x" * 100_000
    for endpoint, data in [
        ("chat", body("chat", model=huge)),
        ("chat", chat_msgs({"role": huge, "content": huge})),
        ("generate", body("generate", user_id=huge)),
    ]:
        with pytest.raises(GatewayError) as info:
            VALIDATORS[endpoint](data)
        assert "xxxxxxxxxx" not in info.value.message


def test_generate_fills_defaults_in_a_new_dict():
    data = dict(GENERATE)
    out = validate_generate(data)
    assert out == {
        "user_id": "u1",
        "service": "svc",
        "task_type": "general",
        "prompt": "hi",
        "system": "",
        "max_tokens": 1000,
        "temperature": 0.7,
        "json_mode": False,
        "model": None,
    }
    assert out is not data and data == GENERATE


def test_generate_keeps_given_values_and_treats_null_as_absent():
    data = body("generate", task_type="t", system="s", max_tokens=5, temperature=0, json_mode=True, model="m")
    data["extra"] = 1
    out = validate_generate(data)
    assert {k: out[k] for k in ("task_type", "system", "max_tokens", "temperature", "json_mode", "model")} == {
        "task_type": "t",
        "system": "s",
        "max_tokens": 5,
        "temperature": 0,
        "json_mode": True,
        "model": "m",
    }
    assert "extra" not in out
    assert validate_generate(body("generate", temperature=None, model=None))["temperature"] == 0.7


def test_every_endpoint_with_a_body_has_a_validator():
    posts = {name for name, endpoint in ENDPOINTS.items() if endpoint.method == "POST"}
    assert posts == set(VALIDATORS) == {"chat", "completions", "embeddings", "images", "messages", "generate"}
    assert all(callable(v) for v in VALIDATORS.values())


def test_validation_does_not_mutate_the_body():
    data = chat_msgs({"role": "assistant", "tool_calls": [TOOL_CALL]})
    snapshot = repr(data)
    VALIDATORS["chat"](data)
    assert repr(data) == snapshot


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"model": "m"}', {"model": "m"}),
        (b"{}", {}),
        (b'  {"a": [1, 2.5, null, true]}\n', {"a": [1, 2.5, None, True]}),
        ('{"emoji": "\u00e9"}'.encode(), {"emoji": "\u00e9"}),
    ],
)
def test_parse_json_object_ok(raw, expected):
    assert parse_json_object(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Request body is empty"),
        (b"   \n", "Request body is empty"),
        (b"{", "Malformed JSON in request body"),
        (b'{"a": 1,}', "Malformed JSON in request body"),
        (b"{'a': 1}", "Malformed JSON in request body"),
        (b"NaN", "Malformed JSON in request body"),
        (b'{"a": 1} x', "Malformed JSON in request body"),
        (b"\xff\xfe", "Malformed JSON in request body"),
        (b"[]", "Request body must be a JSON object"),
        (b'[{"model": "m"}]', "Request body must be a JSON object"),
        (b'"text"', "Request body must be a JSON object"),
        (b"42", "Request body must be a JSON object"),
        (b"null", "Request body must be a JSON object"),
        (b"true", "Request body must be a JSON object"),
    ],
)
def test_parse_json_object_errors(raw, message):
    with pytest.raises(GatewayError) as info:
        parse_json_object(raw)
    err = info.value
    assert (err.status, err.code, err.param, err.message) == (400, "invalid_request", None, message)
