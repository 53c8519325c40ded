"""The router on its own (providers/router.py): `route()` called directly with real
providers on the HTTP mock upstream (or the in-process echo provider), no gateway
in front. Order, retries, failover, client faults, skipped providers, circuits,
a provider's own RPM, streams, and the backoff between retries."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest

from core.errors import GatewayError
from gateway.endpoints import ENDPOINTS
from providers.circuit import CircuitConfig, circuits
from providers.registry import Target, Upstream
from providers.router import MAX_BACKOFF, Attempt, ClientFault, Streamed, backoff, route
from tests.mock_upstream import MockUpstream, drop, hang, status

API_KEY = "sk-test-upstream-secret-9876"
MODEL = "gpt-4o-mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
# Inside one fixed minute, so a provider's RPM window cannot roll over mid-test.
MINUTE_START = datetime(2026, 5, 1, 12, 0, 1, tzinfo=UTC)

_ids = itertools.count(1)


def target(
    name: str,
    base_url: str = "",
    *,
    type: str = "openai_compatible",
    max_retries: int = 0,
    timeout: float = 2.0,
    rate_limit_rpm: int | None = None,
) -> Target:
    """A provider as the router sees it, serving MODEL."""
    upstream = Upstream(
        id=next(_ids),
        name=name,
        type=type,
        base_url=base_url,
        api_key=API_KEY,
        priority=0,
        timeout=timeout,
        max_retries=max_retries,
        custom_headers={},
        rate_limit_rpm=rate_limit_rpm,
        rate_limit_tpm=None,
        enabled=True,
        models=(MODEL,),
    )
    return Target(upstream, MODEL)


async def chat(
    candidates: list[Target], attempt: Attempt | None = None, *, stream: bool = False, circuit: dict | None = None
):
    return await route(
        candidates, ENDPOINTS["chat"], CHAT, stream=stream, attempt=attempt or Attempt(), circuit=circuit
    )


def reply_text(reply) -> str:
    return reply.data["choices"][0]["message"]["content"]


async def drain(streamed: Streamed) -> list[dict]:
    chunks = list(streamed.first or [])
    try:
        async for batch in streamed.rest:
            chunks += batch
    finally:
        await streamed.rest.aclose()
    return [json.loads(chunk) for chunk in chunks]


@pytest.fixture
def second_mock():
    with MockUpstream() as mock:
        yield mock


@pytest.fixture
def dead_url() -> str:
    """The address of an upstream that is gone: connections to it are refused."""
    mock = MockUpstream()
    mock.stop()
    return mock.openai_base


@pytest.fixture
def rpm_minute(time_machine):
    time_machine.move_to(MINUTE_START, tick=True)


# --- order, retries and failover ---------------------------------------------------


async def test_candidates_are_tried_in_the_given_order(mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    second_mock.set_default(status(500))
    attempt = Attempt()
    reply = await chat(
        [
            target("first", mock_upstream.openai_base),
            target("second", second_mock.openai_base),
            target("echo", type="echo"),
        ],
        attempt,
    )
    assert reply_text(reply) == "hi" and attempt.target.upstream.name == "echo"
    assert len(mock_upstream.requests) == 1 and len(second_mock.requests) == 1
    assert mock_upstream.requests[0].received_at < second_mock.requests[0].received_at


async def test_later_candidates_are_not_called_once_one_answers(mock_upstream, second_mock):
    reply = await chat([target("first", mock_upstream.openai_base), target("second", second_mock.openai_base)])
    assert reply_text(reply) == "mock: hi"
    assert len(mock_upstream.requests) == 1 and not second_mock.requests


@pytest.mark.parametrize("code", [500, 502, 503, 529, 429])
async def test_retryable_status_is_retried_up_to_max_retries_then_fails_over(mock_upstream, second_mock, code):
    mock_upstream.set_default(status(code))
    attempt = Attempt()
    reply = await chat(
        [target("primary", mock_upstream.openai_base, max_retries=2), target("backup", second_mock.openai_base)],
        attempt,
    )
    assert reply_text(reply) == "mock: hi"
    assert len(mock_upstream.requests) == 3 and len(second_mock.requests) == 1
    assert attempt.attempts == 4 and attempt.target.upstream.name == "backup"


async def test_retry_on_the_same_provider_can_succeed(mock_upstream, second_mock):
    mock_upstream.push(status(502))
    attempt = Attempt()
    await chat(
        [target("primary", mock_upstream.openai_base, max_retries=1), target("backup", second_mock.openai_base)],
        attempt,
    )
    assert attempt.attempts == 2 and attempt.target.upstream.name == "primary"
    assert not second_mock.requests


async def test_retry_waits_for_the_upstreams_retry_after(mock_upstream):
    mock_upstream.push(status(429, headers={"Retry-After": "0.3"}))
    await chat([target("primary", mock_upstream.openai_base, max_retries=1)])
    first, second = mock_upstream.requests
    assert second.received_at - first.received_at >= 0.3


async def test_connect_error_is_retried_then_fails_over(dead_url, mock_upstream):
    attempt = Attempt()
    reply = await chat([target("gone", dead_url, max_retries=1), target("backup", mock_upstream.openai_base)], attempt)
    assert reply_text(reply) == "mock: hi"
    assert attempt.attempts == 3 and attempt.target.upstream.name == "backup"


async def test_dropped_connection_is_retried_then_fails_over(mock_upstream, second_mock):
    mock_upstream.set_default(drop())
    attempt = Attempt()
    await chat(
        [target("primary", mock_upstream.openai_base, max_retries=1), target("backup", second_mock.openai_base)],
        attempt,
    )
    assert len(mock_upstream.requests) == 2 and attempt.target.upstream.name == "backup"


async def test_timeout_is_retried_then_fails_over(mock_upstream, second_mock):
    mock_upstream.set_default(hang(5))
    attempt = Attempt()
    reply = await chat(
        [
            target("slow", mock_upstream.openai_base, max_retries=1, timeout=0.2),
            target("backup", second_mock.openai_base),
        ],
        attempt,
    )
    assert reply_text(reply) == "mock: hi"
    assert len(mock_upstream.requests) == 2 and attempt.target.upstream.name == "backup"


async def test_non_retryable_status_fails_over_without_retrying(mock_upstream, second_mock):
    mock_upstream.set_default(status(401))
    await chat([target("primary", mock_upstream.openai_base, max_retries=2), target("backup", second_mock.openai_base)])
    assert len(mock_upstream.requests) == 1 and len(second_mock.requests) == 1


# --- client faults -------------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 413, 422])
async def test_client_fault_is_raised_without_retry_or_failover(mock_upstream, second_mock, code):
    mock_upstream.push(status(code, body={"error": {"message": "context length exceeded"}}))
    attempt = Attempt()
    with pytest.raises(ClientFault) as caught:
        await chat(
            [target("primary", mock_upstream.openai_base, max_retries=2), target("backup", second_mock.openai_base)],
            attempt,
        )
    assert caught.value.error.status == code and caught.value.error.message == "context length exceeded"
    assert len(mock_upstream.requests) == 1 and not second_mock.requests
    assert attempt.attempts == 1


async def test_client_fault_counts_as_a_success_for_the_circuit(mock_upstream):
    mock_upstream.push(status(500))
    mock_upstream.push(status(400))
    with pytest.raises(ClientFault):
        await chat([target("primary", mock_upstream.openai_base, max_retries=1)])
    assert await circuits.status("primary") == "healthy"  # the 500 before it is forgotten


# --- skipped providers ---------------------------------------------------------------


async def test_provider_whose_adapter_does_not_serve_the_endpoint_is_skipped(mock_upstream):
    attempt = Attempt()
    reply = await route(
        [target("claude", mock_upstream.url, type="anthropic"), target("echo", type="echo")],
        ENDPOINTS["embeddings"],
        {"model": MODEL, "input": "hello"},
        stream=False,
        attempt=attempt,
        circuit=None,
    )
    assert reply.data["object"] == "list"
    assert not mock_upstream.requests
    assert attempt.attempts == 1 and attempt.target.upstream.name == "echo"


async def test_no_provider_serving_the_endpoint_is_provider_unavailable(mock_upstream):
    with pytest.raises(GatewayError) as caught:
        await route(
            [target("claude", mock_upstream.url, type="anthropic")],
            ENDPOINTS["embeddings"],
            {"model": MODEL, "input": "hello"},
            stream=False,
            attempt=Attempt(),
            circuit=None,
        )
    assert caught.value.code == "provider_unavailable"
    assert not mock_upstream.requests


async def test_provider_with_an_open_circuit_is_skipped(mock_upstream, second_mock):
    config = {"failure_threshold": 1}
    await circuits.record_failure("primary", CircuitConfig.from_settings(config))
    attempt = Attempt()
    await chat(
        [target("primary", mock_upstream.openai_base), target("backup", second_mock.openai_base)],
        attempt,
        circuit=config,
    )
    assert not mock_upstream.requests
    assert attempt.attempts == 1 and attempt.target.upstream.name == "backup"


async def test_circuit_opening_stops_the_retries_on_that_provider(mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    attempt = Attempt()
    await chat(
        [target("primary", mock_upstream.openai_base, max_retries=3), target("backup", second_mock.openai_base)],
        attempt,
        circuit={"failure_threshold": 2},
    )
    assert len(mock_upstream.requests) == 2  # not 4: open after the second failure
    assert attempt.attempts == 3 and attempt.target.upstream.name == "backup"
    assert await circuits.status("primary") == "unhealthy"


async def test_provider_at_its_own_rpm_limit_is_skipped(rpm_minute, mock_upstream, second_mock):
    candidates = [
        target("primary", mock_upstream.openai_base, rate_limit_rpm=1),
        target("backup", second_mock.openai_base),
    ]
    await chat(candidates)
    attempt = Attempt()
    await chat(candidates, attempt)
    assert len(mock_upstream.requests) == 1 and len(second_mock.requests) == 1
    assert attempt.target.upstream.name == "backup"


# --- attempt -------------------------------------------------------------------------


async def test_attempt_records_attempts_target_and_upstream_seconds(mock_upstream, second_mock):
    mock_upstream.set_default(hang(5))
    second_mock.push(hang(0.1))  # then answers
    candidates = [
        target("slow", mock_upstream.openai_base, timeout=0.2),
        target("backup", second_mock.openai_base),
    ]
    attempt = Attempt()
    await chat(candidates, attempt)
    assert attempt.attempts == 2
    assert attempt.target is candidates[1]
    assert 0.3 <= attempt.upstream_seconds < 2.0  # the timed-out call and the answered one


async def test_attempt_records_the_providers_rpm_counter_taken(mock_upstream):
    attempt = Attempt()
    await chat([target("primary", mock_upstream.openai_base, rate_limit_rpm=10)], attempt)
    assert [(check.kind, check.level, check.limit) for check in attempt.provider_checks] == [("rpm", "provider", 10)]


# --- when every provider fails -------------------------------------------------------


async def test_all_failing_is_upstream_error_naming_the_last_status(mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    second_mock.set_default(status(503, body={"error": {"message": f"upstream rejected key {API_KEY}"}}))
    with pytest.raises(GatewayError) as caught:
        await chat([target("primary", mock_upstream.openai_base), target("backup", second_mock.openai_base)])
    error = caught.value
    assert (error.code, error.status) == ("upstream_error", 502)
    assert "HTTP 503" in error.message
    assert API_KEY not in json.dumps(error.body()) and API_KEY not in str(error)


async def test_timeout_as_last_error_is_upstream_timeout(mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    second_mock.set_default(hang(5))
    with pytest.raises(GatewayError) as caught:
        await chat([target("primary", mock_upstream.openai_base), target("slow", second_mock.openai_base, timeout=0.2)])
    assert (caught.value.code, caught.value.status) == ("upstream_timeout", 504)


async def test_all_circuits_open_is_provider_unavailable(mock_upstream, second_mock):
    config = {"failure_threshold": 1}
    for name in ("primary", "backup"):
        await circuits.record_failure(name, CircuitConfig.from_settings(config))
    attempt = Attempt()
    with pytest.raises(GatewayError) as caught:
        await chat(
            [target("primary", mock_upstream.openai_base), target("backup", second_mock.openai_base)],
            attempt,
            circuit=config,
        )
    assert (caught.value.code, caught.value.status) == ("provider_unavailable", 503)
    assert not mock_upstream.requests and not second_mock.requests
    assert attempt.attempts == 0 and attempt.target is None


async def test_all_providers_at_their_rpm_limit_is_rate_limited_with_retry_after(rpm_minute, mock_upstream):
    candidates = [target("primary", mock_upstream.openai_base, rate_limit_rpm=1)]
    await chat(candidates)
    with pytest.raises(GatewayError) as caught:
        await chat(candidates)
    error = caught.value
    assert (error.code, error.status) == ("rate_limited", 429)
    assert error.headers == {"Retry-After": "1"} and error.body()["error"]["retry_after"] == 1
    assert len(mock_upstream.requests) == 1


# --- streams -------------------------------------------------------------------------


async def test_stream_returns_streamed_with_the_first_batch_read(mock_upstream):
    streamed = await chat([target("primary", mock_upstream.openai_base)], stream=True)
    assert isinstance(streamed, Streamed)
    assert streamed.first and json.loads(streamed.first[0])["object"] == "chat.completion.chunk"
    chunks = await drain(streamed)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "mock: hi"
    assert chunks[-1]["usage"]["total_tokens"] > 0  # asked for upstream, whatever the client asked


@pytest.mark.parametrize("failure", [status(500), status(429), drop()], ids=["500", "429", "drop"])
async def test_stream_failing_before_the_first_chunk_fails_over(mock_upstream, second_mock, failure):
    mock_upstream.set_default(failure)
    attempt = Attempt()
    streamed = await chat(
        [target("primary", mock_upstream.openai_base, max_retries=1), target("backup", second_mock.openai_base)],
        attempt,
        stream=True,
    )
    assert streamed.first
    await drain(streamed)
    assert len(mock_upstream.requests) == 2 and len(second_mock.requests) == 1
    assert attempt.attempts == 3 and attempt.target.upstream.name == "backup"


async def test_stream_timing_out_before_the_first_chunk_fails_over(mock_upstream, second_mock):
    mock_upstream.set_default(hang(5))
    attempt = Attempt()
    streamed = await chat(
        [target("slow", mock_upstream.openai_base, timeout=0.2), target("backup", second_mock.openai_base)],
        attempt,
        stream=True,
    )
    await drain(streamed)
    assert attempt.target.upstream.name == "backup"


async def test_stream_client_fault_is_raised_without_failover(mock_upstream, second_mock):
    mock_upstream.push(status(400))
    with pytest.raises(ClientFault):
        await chat(
            [target("primary", mock_upstream.openai_base), target("backup", second_mock.openai_base)], stream=True
        )
    assert not second_mock.requests


# --- backoff -------------------------------------------------------------------------


def test_backoff_honours_retry_after(settings):
    settings.RETRY_BACKOFF_BASE = 0.25
    assert backoff(0, 1.5) == 1.5
    assert backoff(5, 0.0) == 0.0  # no jitter, no growth: the upstream said when


def test_backoff_caps_retry_after_at_max_backoff():
    assert backoff(0, 3600.0) == MAX_BACKOFF


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.RETRY_BACKOFF_BASE = 0.25
    for retry, low in [(0, 0.25), (1, 0.5), (2, 1.0)]:
        assert all(low <= backoff(retry, None) <= low + 0.25 for _ in range(50))


def test_backoff_never_exceeds_max_backoff(settings):
    settings.RETRY_BACKOFF_BASE = 1.0
    assert max(backoff(10, None) for _ in range(50)) <= MAX_BACKOFF


def test_backoff_is_zero_with_a_zero_base(settings):
    settings.RETRY_BACKOFF_BASE = 0.0
    assert backoff(3, None) == 0.0
