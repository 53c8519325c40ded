"""Under Daphne in its own process, as in production: a client that goes away
is noticed at once (the upstream call is closed, usage bills what was
streamed, flagged), and changes made by another process reach it in time."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.live import DaphneGateway
from tests.mock_upstream import hang, slow_stream, status
from usage.models import UsageRecord

PROMPT = "one two three four five six seven eight nine ten eleven twelve"
TOTAL_EVENTS = 18  # role + "mock:" + 12 words + finish + usage + [DONE] (+ leeway below)


@pytest.fixture(scope="module")
def daphne(django_db_setup):
    server = DaphneGateway()
    yield server
    server.stop()


@pytest.fixture
def slow_upstream(proxy_world, factory, mock_upstream):
    factory.make_provider("primary", base_url=mock_upstream.openai_base, timeout=30)
    return mock_upstream


def wait_for_record(key_id: int, timeout: float = 5.0) -> UsageRecord:
    """This test's record (the server writes in the background: an earlier
    test's record may land later, so filter by this test's key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = UsageRecord.objects.filter(key_id=key_id).first()
        if record is not None:
            return record
        time.sleep(0.05)
    raise AssertionError("no usage record was written")


def body(stream: bool = True) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": stream}


def test_stream_relays_first_chunk_before_upstream_finishes(daphne, proxy_world, slow_upstream):
    slow_upstream.set_default(slow_stream(0.25))
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    with httpx.stream("POST", daphne.v1 + "/chat/completions", json=body(), headers=headers, timeout=30) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(lines)
        assert first.startswith("data: ")
        # The upstream is still sending: nothing was buffered until its end.
        assert not slow_upstream.stream_done.is_set()
        assert slow_upstream.stream_events_sent < 5
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"


def test_disconnect_mid_stream_closes_upstream_and_bills_partial_output(daphne, proxy_world, slow_upstream):
    slow_upstream.set_default(slow_stream(0.3))
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    with httpx.stream("POST", daphne.v1 + "/chat/completions", json=body(), headers=headers, timeout=30) as response:
        lines = response.iter_lines()
        received = [line for _, line in zip(range(6), lines, strict=False) if line.startswith("data: ")]
        assert len(received) >= 3
        left_at = time.monotonic()
    # Client gone: the gateway notices at once, not after the upstream ends (~5 s).
    record = wait_for_record(proxy_world.member_key.pk)
    assert time.monotonic() - left_at < 2.5
    assert (record.status, record.error_code) == (499, "client_disconnected")
    assert record.disconnected and record.stream and record.estimated
    assert record.output_tokens >= 2 and record.input_tokens >= 1
    assert record.provider == "primary" and record.key_id == proxy_world.member_key.pk
    time.sleep(0.8)
    assert not slow_upstream.stream_done.is_set()
    assert slow_upstream.stream_events_sent < TOTAL_EVENTS - 4


def test_disconnect_before_first_token_cancels_upstream_call(daphne, proxy_world, slow_upstream):
    slow_upstream.set_default(hang(10))
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {proxy_world.member_raw}\r\n"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{payload}"
    )
    import json

    payload = json.dumps(body())
    with socket.create_connection(("127.0.0.1", daphne.port), timeout=5) as conn:
        conn.sendall(request.format(length=len(payload), payload=payload).encode())
        assert slow_upstream.wait_for_requests(1, timeout=5)
        left_at = time.monotonic()
    record = wait_for_record(proxy_world.member_key.pk)
    assert time.monotonic() - left_at < 2.5
    assert record.status == 499 and record.disconnected
    assert record.output_tokens == 0 and record.attempts == 1


def test_non_stream_request_under_daphne(daphne, proxy_world, slow_upstream):
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    response = httpx.post(daphne.v1 + "/chat/completions", json=body(stream=False), headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == f"mock: {PROMPT}"
    record = wait_for_record(proxy_world.member_key.pk)
    assert record.status == 200 and not record.disconnected and not record.estimated


def test_revocation_reaches_another_process_within_two_seconds(daphne, proxy_world, slow_upstream):
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    url = daphne.v1 + "/chat/completions"
    assert httpx.post(url, json=body(stream=False), headers=headers, timeout=10).status_code == 200  # cached there
    proxy_world.member_key.revoke()  # in this process: the other one learns through Redis or its 1 s cache
    deadline = time.monotonic() + 2
    while httpx.post(url, json=body(stream=False), headers=headers, timeout=10).status_code != 401:
        assert time.monotonic() < deadline, "the other process still accepts a revoked key after 2 s"
        time.sleep(0.1)


def test_circuit_state_is_shared_across_processes_with_redis(
    daphne, live_gateway, proxy_world, factory, mock_upstream, settings
):
    """With REDIS_URL, failures seen by one process open the circuit for all;
    without it each process keeps its own (the one-process laptop case)."""
    from providers.models import ConfigState

    ConfigState.objects.update_or_create(
        pk=1, defaults={"data": {"circuit_breaker": {"failure_threshold": 2, "recovery_timeout": 60}}}
    )
    factory.make_provider("flaky", base_url=mock_upstream.openai_base)
    mock_upstream.set_default(status(500))
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    for _ in range(2):  # this process (the in-thread server) opens its circuit
        assert httpx.post(live_gateway.v1 + "/chat/completions", json=body(False), headers=headers).status_code == 502
    calls_before = len(mock_upstream.requests)
    response = httpx.post(daphne.v1 + "/chat/completions", json=body(False), headers=headers, timeout=10)
    if settings.REDIS_URL:
        assert response.status_code == 503
        assert len(mock_upstream.requests) == calls_before  # skipped without a call
    else:
        assert response.status_code == 502
        assert len(mock_upstream.requests) == calls_before + 1
