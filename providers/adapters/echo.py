"""The built-in `echo` provider: answers with the last user message's text,
streamed word by word when asked, with usage counted. No network, so a fresh
install and the tests work with no upstream at all."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from core import jsonfast
from providers.adapters.base import Adapter, ClientEndpoint, Reply, Usage

MODELS = ["echo"]
# A 1x1 transparent PNG, so image requests get a well-formed answer.
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages: list) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def count_words(text: str) -> int:
    return len(text.split())


def prompt_tokens(messages: list) -> int:
    return max(1, sum(count_words(_text(m.get("content"))) for m in messages if isinstance(m, dict)))


class EchoAdapter(Adapter):
    wire = "echo"

    async def request(self, endpoint: ClientEndpoint, body: dict, model: str) -> Reply:
        return getattr(self, f"_{endpoint.name}")(body, model)

    def _chat(self, body: dict, model: str) -> Reply:
        text = last_user_text(body["messages"])
        usage = Usage(prompt_tokens(body["messages"]), count_words(text))
        data = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": _openai_usage(usage),
        }
        return Reply(data, usage)

    def _completions(self, body: dict, model: str) -> Reply:
        prompt = body["prompt"] if isinstance(body["prompt"], str) else " ".join(map(str, body["prompt"]))
        usage = Usage(max(1, count_words(prompt)), count_words(prompt))
        data = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "text": prompt, "finish_reason": "stop", "logprobs": None}],
            "usage": _openai_usage(usage),
        }
        return Reply(data, usage)

    def _embeddings(self, body: dict, model: str) -> Reply:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [_vector(str(item)) for item in inputs]
        tokens = sum(max(1, count_words(str(item))) for item in inputs)
        usage = Usage(tokens, 0)
        data = {
            "object": "list",
            "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(data, usage)

    def _images(self, body: dict, model: str) -> Reply:
        count = body.get("n") or 1
        data = {"created": int(time.time()), "data": [{"b64_json": PIXEL_PNG} for _ in range(count)]}
        return Reply(data, Usage(max(1, count_words(body["prompt"])), 0))

    async def stream(self, endpoint: ClientEndpoint, body: dict, model: str) -> AsyncIterator[list[bytes]]:
        reply = await self.request(endpoint, body, model)
        for chunk in _chunks(reply, endpoint.name, model):
            yield [chunk]  # one at a time, as a model's tokens would come

    def list_models(self) -> list[str]:
        return list(MODELS)


def _chunks(reply: Reply, endpoint: str, model: str) -> Iterator[bytes]:
    """The reply as the chunks of a stream: the role, a word each, the finish, the usage."""
    base = {"id": reply.data["id"], "created": reply.data["created"], "model": model}
    if endpoint == "completions":
        base["object"] = "text_completion"
        yield jsonfast.dumps({**base, "choices": [_text_choice(reply.data["choices"][0]["text"], "stop")]})
    else:
        base["object"] = "chat.completion.chunk"
        yield jsonfast.dumps({**base, "choices": [_delta({"role": "assistant", "content": ""})]})
        words = reply.data["choices"][0]["message"]["content"].split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            if piece:
                yield jsonfast.dumps({**base, "choices": [_delta({"content": piece})]})
        yield jsonfast.dumps({**base, "choices": [_delta({}, "stop")]})
    yield jsonfast.dumps({**base, "choices": [], "usage": reply.data["usage"]})


def _openai_usage(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _delta(delta: dict, finish_reason: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def _text_choice(text: str, finish_reason: str | None) -> dict:
    return {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255.0, 6) for b in digest[:8]]
