"""Routing: priority order, retries, failover, pass-through of client faults,
circuit breaker, timeouts, aliases and overrides."""

from __future__ import annotations

import time

import openai
import pytest

from providers.models import ModelAlias, Override
from tests.mock_upstream import MockUpstream, drop, garbage, hang, status

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def second_mock():
    with MockUpstream() as mock:
        yield mock


@pytest.fixture
def two_providers(proxy_world, factory, mock_upstream, second_mock):
    """`primary` (priority 10, one retry) on one mock, `backup` (priority 1) on another."""
    primary = factory.make_provider("primary", base_url=mock_upstream.openai_base, priority=10, max_retries=1)
    backup = factory.make_provider("backup", base_url=second_mock.openai_base, priority=1)
    return primary, backup


def chat(client, **kwargs):
    return client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


def test_higher_priority_provider_is_tried_first(client, two_providers, mock_upstream, second_mock):
    response = chat(client)
    assert response.headers["x-gateway-provider"] == "primary"
    assert len(mock_upstream.requests) == 1 and not second_mock.requests


@pytest.mark.parametrize("failure", [status(500), status(503), status(429), garbage(), drop()])
def test_retry_then_failover_on_retryable_failures(client, two_providers, mock_upstream, second_mock, failure):
    mock_upstream.set_default(failure)
    response = chat(client)
    body = response.http_response.json()
    assert body["_proxy_info"]["provider"] == "backup"
    assert body["_proxy_info"]["attempt_number"] == 3  # primary twice (max_retries=1), then backup
    assert len(mock_upstream.requests) == 2 and len(second_mock.requests) == 1


def test_retry_on_same_provider_can_succeed(client, two_providers, mock_upstream, second_mock):
    mock_upstream.push(status(502))
    body = chat(client).http_response.json()
    assert body["_proxy_info"] == {**body["_proxy_info"], "provider": "primary", "attempt_number": 2}
    assert not second_mock.requests


@pytest.mark.parametrize("code", [400, 422])
def test_client_fault_is_passed_through_without_failover(client, two_providers, mock_upstream, second_mock, code):
    mock_upstream.push(
        status(code, body={"error": {"message": "context length exceeded", "type": "invalid_request_error"}})
    )
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client)
    assert caught.value.status_code == code
    assert caught.value.body["message"] == "context length exceeded"
    assert len(mock_upstream.requests) == 1 and not second_mock.requests


def test_all_failing_is_502_naming_last_upstream_status(client, two_providers, mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    second_mock.set_default(status(503))
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client)
    assert caught.value.status_code == 502
    error = caught.value.response.json()["error"]
    assert error["code"] == "upstream_error" and "HTTP 503" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_timeout_is_504(client, proxy_world, factory, mock_upstream):
    factory.make_provider("slow", base_url=mock_upstream.openai_base, timeout=0.3)
    mock_upstream.set_default(hang(5))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client)
    assert caught.value.status_code == 504
    assert caught.value.response.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 3


def test_stream_fails_over_before_first_byte(client, two_providers, mock_upstream, second_mock):
    mock_upstream.set_default(status(500))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock: hi"
    assert len(second_mock.requests) == 1


def test_circuit_opens_then_half_opens(client, proxy_world, factory, mock_upstream, second_mock, settings):
    from providers.models import ConfigState

    ConfigState.objects.update_or_create(
        pk=1,
        defaults={
            "data": {"circuit_breaker": {"failure_threshold": 2, "recovery_timeout": 1, "half_open_max_calls": 1}}
        },
    )
    factory.make_provider("primary", base_url=mock_upstream.openai_base, priority=10)
    factory.make_provider("backup", base_url=second_mock.openai_base, priority=1)
    mock_upstream.set_default(status(500))
    for _ in range(2):
        assert chat(client).headers["x-gateway-provider"] == "backup"
    assert len(mock_upstream.requests) == 2
    # Open: primary is skipped without being called.
    assert chat(client).headers["x-gateway-provider"] == "backup"
    assert len(mock_upstream.requests) == 2
    # After the recovery timeout one probe goes through; it succeeds and closes the circuit.
    mock_upstream.set_default(None)
    time.sleep(1.2)
    assert chat(client).headers["x-gateway-provider"] == "primary"
    assert chat(client).headers["x-gateway-provider"] == "primary"
    assert len(mock_upstream.requests) == 4


def test_failed_probe_reopens_circuit(client, proxy_world, factory, mock_upstream, second_mock):
    from providers.models import ConfigState

    ConfigState.objects.update_or_create(
        pk=1,
        defaults={
            "data": {"circuit_breaker": {"failure_threshold": 1, "recovery_timeout": 1, "half_open_max_calls": 1}}
        },
    )
    factory.make_provider("primary", base_url=mock_upstream.openai_base, priority=10)
    factory.make_provider("backup", base_url=second_mock.openai_base, priority=1)
    mock_upstream.set_default(status(500))
    chat(client)  # opens
    time.sleep(1.2)
    chat(client)  # probe fails: open again
    chat(client)  # skipped
    assert len(mock_upstream.requests) == 2


def test_open_circuit_on_only_provider_is_503(client, proxy_world, factory, mock_upstream):
    from providers.models import ConfigState

    ConfigState.objects.update_or_create(
        pk=1, defaults={"data": {"circuit_breaker": {"failure_threshold": 1, "recovery_timeout": 60}}}
    )
    factory.make_provider("only", base_url=mock_upstream.openai_base)
    mock_upstream.set_default(status(500))
    with pytest.raises(openai.APIStatusError) as first:
        chat(client)
    assert first.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as second:
        chat(client)
    assert second.value.status_code == 503
    assert second.value.response.json()["error"]["code"] == "provider_unavailable"


def test_alias_routes_to_its_targets_in_order(client, two_providers, mock_upstream, second_mock):
    primary, backup = two_providers
    ModelAlias.objects.create(name="fast", provider=backup, model="gpt-4o-mini", position=0)
    ModelAlias.objects.create(name="fast", provider=primary, model="gpt-4o-mini", position=1)
    response = client.chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
    assert response.headers["x-gateway-provider"] == "backup"
    assert second_mock.last_request.json["model"] == "gpt-4o-mini"


def test_override_forces_provider_and_model_for_the_keys_user(client, proxy_world, two_providers, second_mock):
    _, backup = two_providers
    Override.objects.create(user_id="member", service_name=None, provider=backup, model="gpt-4o")
    response = chat(client)
    assert response.headers["x-gateway-provider"] == "backup"
    assert second_mock.last_request.json["model"] == "gpt-4o"


def test_override_by_request_user_field(client, two_providers, second_mock):
    _, backup = two_providers
    Override.objects.create(user_id="end-user-42", service_name=None, provider=backup, model="gpt-4o")
    assert chat(client, user="end-user-42").headers["x-gateway-provider"] == "backup"
    assert chat(client, user="someone-else").headers["x-gateway-provider"] == "primary"


def test_a_tenants_override_applies_to_its_own_requests_only(client, proxy_world, two_providers, second_mock):
    """The outsider tenant's override for a user named "member" never reaches acme's member."""
    _, backup = two_providers
    Override.objects.create(tenant=proxy_world.globex, user_id="member", provider=backup, model="gpt-4o")
    assert chat(client).headers["x-gateway-provider"] == "primary"
    Override.objects.create(tenant=proxy_world.acme, user_id="member", provider=backup, model="gpt-4o")
    assert chat(client).headers["x-gateway-provider"] == "backup"


def test_a_tenants_own_override_wins_over_a_global_one(client, proxy_world, two_providers):
    primary, backup = two_providers
    Override.objects.create(user_id="member", provider=backup, model="gpt-4o")
    Override.objects.create(tenant=proxy_world.acme, user_id="member", provider=primary, model="gpt-4o-mini")
    assert chat(client).headers["x-gateway-provider"] == "primary"


def test_provider_change_is_seen_without_restart(client, two_providers, mock_upstream):
    primary, _ = two_providers
    primary.is_enabled = False
    primary.save()
    assert chat(client).headers["x-gateway-provider"] == "backup"
