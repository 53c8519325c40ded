"""The client endpoints: everything the gateway knows about each one, in one table.

An entry says where the endpoint is (method, path), how its body is checked,
whether it may stream and may be answered from the response cache, how its
prompt is estimated and which fields cap its output (for the admission
estimate), and where it goes on each upstream wire format. The consumer
resolves paths here, the pipeline calls `Pipeline.handle_<handler>`, the
response cache reads `cacheable`, and the adapters read `upstream` (the router
skips a provider whose wire format is not listed). Adding an endpoint is one
entry here plus its handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import GatewayError
from gateway import validation


def prompt_of(*fields: str) -> Callable[[dict], str]:
    """The text whose length estimates a request's prompt: these body fields, as text."""

    if len(fields) == 1:
        (only,) = fields

        def text(body: dict) -> str:
            return str(body.get(only) or "")

    else:

        def text(body: dict) -> str:
            return "".join(str(body.get(name) or "") for name in fields)

    return text


def no_prompt(body: dict) -> str:
    return ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # as recorded on usage records and metrics
    method: str
    path: str
    handler: str  # Pipeline.handle_<handler>
    validate: Callable[[dict], object] | None = None
    streams: bool = False  # answers as SSE when the body says `stream: true`
    cacheable: bool = False  # may be answered from the response cache
    prompt: Callable[[dict], str] = no_prompt  # its prompt's text, for the estimate
    max_tokens_fields: tuple[str, ...] = ()  # fields capping the output; none: it produces no output tokens
    upstream: Mapping[str, str] = field(default_factory=dict)  # wire format -> path on that upstream
    routes_as: str | None = None  # the endpoint whose upstream call it makes (after translation)
    anthropic_errors: bool = False  # errors in Anthropic's shape (a top-level "type": "error")
    default_model: str | None = None

    @property
    def model_path(self) -> bool:
        """A path with the model id at its end (`/v1/models/{model_id}`)."""
        return self.path.endswith("{model_id}")


# "echo" is the built-in provider: answered in process, no path.
ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(
            "chat", "POST", "/v1/chat/completions", "proxy", validation.validate_chat,
            streams=True, cacheable=True, prompt=prompt_of("messages"),
            max_tokens_fields=("max_completion_tokens", "max_tokens"),
            upstream={"openai": "/chat/completions", "anthropic": "/v1/messages", "echo": ""},
        ),
        Endpoint(
            "completions", "POST", "/v1/completions", "proxy", validation.validate_completions,
            streams=True, cacheable=True, prompt=prompt_of("prompt"), max_tokens_fields=("max_tokens",),
            upstream={"openai": "/completions", "echo": ""},
        ),
        Endpoint(
            "embeddings", "POST", "/v1/embeddings", "proxy", validation.validate_embeddings,
            cacheable=True, prompt=prompt_of("input"),
            upstream={"openai": "/embeddings", "echo": ""},
        ),
        Endpoint(
            "images", "POST", "/v1/images/generations", "proxy", validation.validate_images,
            prompt=prompt_of("prompt"), default_model="dall-e-2",
            upstream={"openai": "/images/generations", "echo": ""},
        ),
        Endpoint(
            "messages", "POST", "/v1/messages", "messages", validation.validate_anthropic_messages,
            streams=True, prompt=prompt_of("system", "messages"), max_tokens_fields=("max_tokens",),
            routes_as="chat", anthropic_errors=True,
        ),
        Endpoint(
            "generate", "POST", "/api/v1/generate", "generate", validation.validate_generate,
            prompt=prompt_of("system", "prompt"), max_tokens_fields=("max_tokens",), routes_as="chat",
        ),
        Endpoint("models", "GET", "/v1/models", "models"),
        Endpoint("model", "GET", "/v1/models/{model_id}", "model"),
    )
}  # fmt: skip

_BY_PATH = {e.path: e for e in ENDPOINTS.values() if not e.model_path}
_MODEL_PREFIXES = [(e.path.removesuffix("{model_id}"), e) for e in ENDPOINTS.values() if e.model_path]
CLIENT_PATHS = frozenset(_BY_PATH)  # exact client paths outside /v1/ (e.g. /api/v1/generate) route here


def resolve(method: str, path: str) -> tuple[Endpoint, str | None] | GatewayError:
    """(endpoint, model id) for a client path, or the error to answer."""
    path = path.rstrip("/") or "/"
    endpoint, model_id = _BY_PATH.get(path), None
    if endpoint is None:
        for prefix, candidate in _MODEL_PREFIXES:
            if path.startswith(prefix) and len(path) > len(prefix):
                endpoint, model_id = candidate, path[len(prefix) :]
                break
    if endpoint is None:
        return GatewayError("not_found", f"Unknown path: {path}")
    if method != endpoint.method:
        return GatewayError("method_not_allowed", f"Use {endpoint.method} for {path}.")
    return endpoint, model_id


def answers_in_anthropic_shape(path: str) -> bool:
    """Whether errors on this path (even before it is resolved) take Anthropic's shape."""
    endpoint = _BY_PATH.get(path.rstrip("/"))
    return endpoint is not None and endpoint.anthropic_errors
