"""Validation of client request bodies, before routing (CONTRACT sections 3 and 4).

Every check raises `GatewayError("invalid_request", ..., param=<field path>)`.
Optional fields are only checked when present and not null; unknown fields
pass untouched because they are forwarded upstream. Messages name the field
and the rule, never the offending value, which may be huge.
"""

from __future__ import annotations

from collections.abc import Callable

from core import jsonfast
from core.errors import GatewayError
from core.names import MODEL_NAME_RE

Check = Callable[[object, str], None]  # (value, param) -> None, raises on failure
Predicate = Callable[[object], bool]

MAX_CHAT_MESSAGES = 10_000
MAX_EMBEDDING_INPUTS = 2048
MAX_STOP_SEQUENCES = 4
MAX_NAME_LENGTH = 100  # user_id, service, task_type of /api/v1/generate: stored as usage attribution

_fullmatch_model = MODEL_NAME_RE.fullmatch


def _fail(param: str | None, message: str) -> GatewayError:
    return GatewayError("invalid_request", message, param=param)


# --- predicates ------------------------------------------------------------
# `type(v) is int` rather than isinstance: bool subclasses int, and JSON
# `true` must never count as 1.


def _is_int(v: object) -> bool:
    return type(v) is int


def _is_number(v: object) -> bool:
    return type(v) is int or type(v) is float


def _is_bool(v: object) -> bool:
    return v is True or v is False


def _is_str(v: object) -> bool:
    return type(v) is str


def _is_dict(v: object) -> bool:
    return type(v) is dict


def _is_nonempty_str(v: object) -> bool:
    return type(v) is str and v != ""


def _is_str_list(v: object) -> bool:
    return type(v) is list and all(type(s) is str for s in v)


# --- check factories -------------------------------------------------------


def _simple(predicate: Predicate, description: str) -> Check:
    def check(value: object, param: str) -> None:
        if not predicate(value):
            raise _fail(param, f"{param} must be {description}")

    return check


def _number(lo: float, hi: float) -> Check:
    # NaN fails the comparison, so it is rejected too.
    return _simple(lambda v: _is_number(v) and lo <= v <= hi, f"a number between {lo:g} and {hi:g}")


def _integer(lo: int, hi: int | None = None) -> Check:
    if hi is None:
        return _simple(lambda v: _is_int(v) and v >= lo, f"an integer >= {lo}")
    return _simple(lambda v: _is_int(v) and lo <= v <= hi, f"an integer between {lo} and {hi}")


def _one_of(*choices: str) -> Check:
    allowed = frozenset(choices)
    return _simple(lambda v: _is_str(v) and v in allowed, "one of " + ", ".join(choices))


def _bounded_str(max_len: int, *, nonempty: bool = False) -> Check:
    lo = 1 if nonempty else 0
    desc = f"a {'non-empty ' if nonempty else ''}string of at most {max_len} characters"
    return _simple(lambda v: _is_str(v) and lo <= len(v) <= max_len, desc)


BOOL = _simple(_is_bool, "a boolean")
STRING = _simple(_is_str, "a string")
NONEMPTY_STRING = _simple(_is_nonempty_str, "a non-empty string")
OBJECT = _simple(_is_dict, "an object")
INT = _simple(_is_int, "an integer")
INT_GE_1 = _integer(1)
PENALTY = _number(-2, 2)
TOP_P = _number(0, 1)


def _check_model(value: object, param: str = "model") -> None:
    if not (_is_str(value) and _fullmatch_model(value)):
        raise _fail(param, f"{param} must be 1-100 characters from A-Z a-z 0-9 . _ : / -")


def _check_logit_bias(value: object, param: str) -> None:
    if not _is_dict(value):
        raise _fail(param, f"{param} must be an object mapping token ids to numbers")
    for key, bias in value.items():
        if not (_is_str(key) and _is_number(bias) and -100 <= bias <= 100):
            raise _fail(param, f"{param} values must be numbers between -100 and 100")


def _check_stop(value: object, param: str) -> None:
    if _is_str(value):
        return
    if not (_is_str_list(value) and len(value) <= MAX_STOP_SEQUENCES):
        raise _fail(param, f"{param} must be a string or a list of at most {MAX_STOP_SEQUENCES} strings")


def _check_stream_options(value: object, param: str) -> None:
    OBJECT(value, param)
    include_usage = value.get("include_usage")
    if include_usage is not None:
        BOOL(include_usage, f"{param}.include_usage")


def _check_chat_tools(value: object, param: str) -> None:
    if type(value) is not list:
        raise _fail(param, f"{param} must be a list of objects")
    for i, tool in enumerate(value):
        at = f"{param}[{i}]"
        OBJECT(tool, at)
        STRING(tool.get("type"), f"{at}.type")
        if tool["type"] == "function":
            function = tool.get("function")
            OBJECT(function, f"{at}.function")
            STRING(function.get("name"), f"{at}.function.name")


def _check_chat_tool_choice(value: object, param: str) -> None:
    if not (_is_dict(value) or (_is_str(value) and value in ("none", "auto", "required"))):
        raise _fail(param, f"{param} must be one of none, auto, required or an object")


def _check_typed_object(value: object, param: str) -> None:
    OBJECT(value, param)
    STRING(value.get("type"), f"{param}.type")


def _check_typed_blocks(value: list, param: str) -> None:
    for j, block in enumerate(value):
        if not (_is_dict(block) and _is_str(block.get("type"))):
            raise _fail(f"{param}[{j}]", f"{param}[{j}] must be an object with a string type")


def _is_int_list(v: object) -> bool:
    return type(v) is list and all(type(t) is int for t in v)


def _is_token_lists(v: object) -> bool:
    return type(v) is list and all(_is_int_list(t) for t in v)


# --- chat messages ---------------------------------------------------------

CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_CHAT_ROLE_SET = frozenset(CHAT_ROLES)


def _check_chat_message(message: object, at: str) -> None:
    if not _is_dict(message):
        raise _fail(at, f"{at} must be an object")
    role = message.get("role")
    if not (_is_str(role) and role in _CHAT_ROLE_SET):
        raise _fail(f"{at}.role", f"{at}.role must be one of " + ", ".join(CHAT_ROLES))

    content = message.get("content")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and type(tool_calls) is not list:
        raise _fail(f"{at}.tool_calls", f"{at}.tool_calls must be a list")
    # Only an assistant tool call may leave content out (or null).
    if content is None and not (role == "assistant" and (tool_calls or message.get("function_call") is not None)):
        raise _fail(f"{at}.content", f"{at}.content is required")

    if content is not None:
        if type(content) is list:
            _check_typed_blocks(content, f"{at}.content")
        elif not _is_str(content):
            raise _fail(f"{at}.content", f"{at}.content must be a string, a list of content parts or null")

    if role == "tool":
        STRING(message.get("tool_call_id"), f"{at}.tool_call_id")


def _check_chat_messages(value: object, param: str) -> None:
    if not (type(value) is list and value):
        raise _fail(param, f"{param} must be a non-empty list")
    if len(value) > MAX_CHAT_MESSAGES:
        raise _fail(param, f"{param} must have at most {MAX_CHAT_MESSAGES} items")
    for i, message in enumerate(value):
        _check_chat_message(message, f"{param}[{i}]")


# --- prompt / input --------------------------------------------------------


def _check_prompt(value: object, param: str) -> None:
    if _is_str(value):
        return
    if not (type(value) is list and value and (_is_str_list(value) or _is_int_list(value) or _is_token_lists(value))):
        raise _fail(
            param,
            f"{param} must be a string, a list of strings, a list of token ids or a list of token id lists",
        )


def _check_embedding_input(value: object, param: str) -> None:
    if _is_str(value):
        if not value:
            raise _fail(param, f"{param} must not be empty")
        return
    if type(value) is list and len(value) > MAX_EMBEDDING_INPUTS:
        raise _fail(param, f"{param} must have at most {MAX_EMBEDDING_INPUTS} items")
    # Upstreams reject empty strings and empty token lists inside the batch too.
    if not (
        type(value) is list
        and value
        and ((_is_str_list(value) and all(value)) or _is_int_list(value) or (_is_token_lists(value) and all(value)))
    ):
        raise _fail(
            param,
            f"{param} must be a non-empty string, a list of non-empty strings, "
            "a list of token ids or a list of token id lists",
        )


# --- anthropic ---------------------------------------------------------------

ANTHROPIC_ROLES = ("user", "assistant")
_ANTHROPIC_ROLE_SET = frozenset(ANTHROPIC_ROLES)


def _check_anthropic_messages(value: object, param: str) -> None:
    if not (type(value) is list and value):
        raise _fail(param, f"{param} must be a non-empty list")
    for i, message in enumerate(value):
        at = f"{param}[{i}]"
        if not _is_dict(message):
            raise _fail(at, f"{at} must be an object")
        role = message.get("role")
        if not (_is_str(role) and role in _ANTHROPIC_ROLE_SET):
            raise _fail(f"{at}.role", f"{at}.role must be one of user, assistant")
        content = message.get("content")
        if _is_str(content):
            continue
        if not (type(content) is list and content):
            raise _fail(f"{at}.content", f"{at}.content must be a string or a non-empty list of content blocks")
        _check_typed_blocks(content, f"{at}.content")


def _check_anthropic_system(value: object, param: str) -> None:
    if _is_str(value):
        return
    if type(value) is not list:
        raise _fail(param, f"{param} must be a string or a list of text blocks")
    for j, block in enumerate(value):
        if not (_is_dict(block) and block.get("type") == "text" and _is_str(block.get("text"))):
            raise _fail(f"{param}[{j}]", f"{param}[{j}] must be a text block with a string text")


def _check_anthropic_tools(value: object, param: str) -> None:
    if type(value) is not list:
        raise _fail(param, f"{param} must be a list of objects")
    for i, tool in enumerate(value):
        OBJECT(tool, f"{param}[{i}]")
        STRING(tool.get("name"), f"{param}[{i}].name")


_check_anthropic_tool_choice_type = _one_of("auto", "any", "tool", "none")


def _check_anthropic_tool_choice(value: object, param: str) -> None:
    OBJECT(value, param)
    _check_anthropic_tool_choice_type(value.get("type"), f"{param}.type")
    if value["type"] == "tool":
        STRING(value.get("name"), f"{param}.name")


# --- field tables ------------------------------------------------------------
# Optional fields per endpoint: checked only when present and not null.

_SAMPLING: dict[str, Check] = {
    "temperature": _number(0, 2),
    "top_p": TOP_P,
    "max_tokens": INT_GE_1,
    "n": _integer(1, 128),
    "presence_penalty": PENALTY,
    "frequency_penalty": PENALTY,
    "logit_bias": _check_logit_bias,
    "stream": BOOL,
    "stream_options": _check_stream_options,
    "stop": _check_stop,
    "user": STRING,
}

CHAT_FIELDS: dict[str, Check] = {
    **_SAMPLING,
    "max_completion_tokens": INT_GE_1,
    "tools": _check_chat_tools,
    "tool_choice": _check_chat_tool_choice,
    "parallel_tool_calls": BOOL,
    "response_format": _check_typed_object,
    "seed": INT,
    "logprobs": BOOL,
    "top_logprobs": _integer(0, 20),
}

COMPLETIONS_FIELDS: dict[str, Check] = {
    **_SAMPLING,
    "echo": BOOL,
    "best_of": INT_GE_1,
    "suffix": STRING,
}

EMBEDDINGS_FIELDS: dict[str, Check] = {
    "encoding_format": _one_of("float", "base64"),
    "dimensions": INT_GE_1,
    "user": STRING,
}

IMAGES_FIELDS: dict[str, Check] = {
    "model": _check_model,
    "n": _integer(1, 10),
    "size": STRING,
    "quality": STRING,
    "response_format": _one_of("url", "b64_json"),
    "style": STRING,
    "user": STRING,
}

ANTHROPIC_FIELDS: dict[str, Check] = {
    "system": _check_anthropic_system,
    "temperature": _number(0, 1),
    "top_p": TOP_P,
    "top_k": _integer(0),
    "stop_sequences": _simple(_is_str_list, "a list of strings"),
    "stream": BOOL,
    "tools": _check_anthropic_tools,
    "tool_choice": _check_anthropic_tool_choice,
    "metadata": OBJECT,
}


def _check_required(body: dict, required: dict[str, Check]) -> None:
    for name, check in required.items():
        value = body.get(name)
        if value is None:
            raise _fail(name, f"{name} is required")
        check(value, name)


def _check_optional(body: dict, optional: dict[str, Check]) -> None:
    # Walk the body, not the table: bodies usually carry far fewer fields.
    for name, value in body.items():
        if value is not None:
            check = optional.get(name)
            if check is not None:
                check(value, name)


# --- public API ----------------------------------------------------------------


def parse_json_object(raw: bytes) -> dict:
    if not raw:
        raise _fail(None, "Request body is empty")
    try:
        body = jsonfast.loads(raw)
    except jsonfast.JSONDecodeError:
        # Whitespace-only is "empty"; checked only here to spare a copy of every good body.
        message = "Request body is empty" if not raw.strip() else "Malformed JSON in request body"
        raise _fail(None, message) from None
    if type(body) is not dict:
        raise _fail(None, "Request body must be a JSON object")
    return body


_MODEL = {"model": _check_model}
_CHAT_REQUIRED: dict[str, Check] = {**_MODEL, "messages": _check_chat_messages}
_COMPLETIONS_REQUIRED: dict[str, Check] = {**_MODEL, "prompt": _check_prompt}
_EMBEDDINGS_REQUIRED: dict[str, Check] = {**_MODEL, "input": _check_embedding_input}
_IMAGES_REQUIRED: dict[str, Check] = {"prompt": NONEMPTY_STRING}
_ANTHROPIC_REQUIRED: dict[str, Check] = {**_MODEL, "max_tokens": INT_GE_1, "messages": _check_anthropic_messages}


def validate_chat(body: dict) -> None:
    """POST /v1/chat/completions."""
    _check_required(body, _CHAT_REQUIRED)
    _check_optional(body, CHAT_FIELDS)


def validate_completions(body: dict) -> None:
    """POST /v1/completions."""
    _check_required(body, _COMPLETIONS_REQUIRED)
    _check_optional(body, COMPLETIONS_FIELDS)


def validate_embeddings(body: dict) -> None:
    """POST /v1/embeddings."""
    _check_required(body, _EMBEDDINGS_REQUIRED)
    _check_optional(body, EMBEDDINGS_FIELDS)


def validate_images(body: dict) -> None:
    """POST /v1/images/generations; model is optional, the caller applies the default."""
    _check_required(body, _IMAGES_REQUIRED)
    _check_optional(body, IMAGES_FIELDS)


def validate_anthropic_messages(body: dict) -> None:
    """POST /v1/messages (Anthropic Messages API)."""
    _check_required(body, _ANTHROPIC_REQUIRED)
    _check_optional(body, ANTHROPIC_FIELDS)


# /api/v1/generate: (check, default); a default of _REQUIRED means required.
_REQUIRED = object()
GENERATE_FIELDS: dict[str, tuple[Check, object]] = {
    "user_id": (_bounded_str(MAX_NAME_LENGTH, nonempty=True), _REQUIRED),
    "service": (_bounded_str(MAX_NAME_LENGTH, nonempty=True), _REQUIRED),
    "task_type": (_bounded_str(MAX_NAME_LENGTH), "general"),
    "prompt": (NONEMPTY_STRING, _REQUIRED),
    "system": (STRING, ""),
    "max_tokens": (_integer(1, 8000), 1000),
    "temperature": (_number(0, 2), 0.7),
    "json_mode": (BOOL, False),
    "model": (_check_model, None),
}


def validate_generate(body: dict) -> dict:
    """POST /api/v1/generate: a new dict of exactly the known fields, defaults filled in.

    Null counts as absent. Unknown fields are dropped: this form is not
    forwarded upstream as-is.
    """
    out: dict = {}
    for name, (check, default) in GENERATE_FIELDS.items():
        value = body.get(name)
        if value is None:
            if default is _REQUIRED:
                raise _fail(name, f"{name} is required")
            out[name] = default
        else:
            check(value, name)
            out[name] = value
    return out
