"""The upstream's API key never reaches a client or a log line."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.mock_upstream import MockUpstream, status

SECRET = "sk-test-upstream-secret-9876"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def leaky_upstream(proxy_world, factory, mock_upstream):
    """A provider whose upstream quotes the key back in its error messages, as some do."""
    factory.make_provider("primary", base_url=mock_upstream.openai_base, api_key=SECRET)
    return mock_upstream


def leaking_error(code: int) -> dict:
    return {"error": {"message": f"Incorrect API key provided: {SECRET}.", "type": "invalid_request_error"}}


@pytest.mark.parametrize("code", [400, 401, 403, 404, 429, 500])
def test_upstream_key_is_never_in_responses_or_logs(live_gateway, proxy_world, leaky_upstream, code, caplog):
    caplog.set_level(logging.DEBUG)
    leaky_upstream.set_default(status(code, body=leaking_error(code)))
    headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
    responses = [
        httpx.post(live_gateway.v1 + "/chat/completions", json=CHAT, headers=headers, timeout=10),
        httpx.post(live_gateway.v1 + "/chat/completions", json={**CHAT, "stream": True}, headers=headers, timeout=10),
        httpx.get(live_gateway.v1 + "/models", headers=headers, timeout=10),
    ]
    for response in responses:
        assert SECRET not in response.text
        assert SECRET not in str(response.headers)
    assert responses[0].status_code >= 400
    assert leaky_upstream.last_request.headers["authorization"] == f"Bearer {SECRET}"  # it was used
    assert SECRET not in caplog.text


def test_connection_error_message_does_not_carry_the_key(live_gateway, proxy_world, factory, caplog):
    caplog.set_level(logging.DEBUG)
    with MockUpstream() as dead:
        base = dead.openai_base
    factory.make_provider("gone", base_url=base, api_key=SECRET)
    response = httpx.post(
        live_gateway.v1 + "/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {proxy_world.member_raw}"},
        timeout=10,
    )
    assert response.status_code == 502
    assert "connection error" in response.json()["error"]["message"]
    assert SECRET not in response.text and SECRET not in caplog.text
