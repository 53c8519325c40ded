from __future__ import annotations

import atexit

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from core import local_caches
from tests.factory import Factory, World
from tests.live import LiveGateway
from tests.mock_upstream import mock_upstream  # noqa: F401  (fixture)
from usage import recorder

ADMIN_KEY = "test-bootstrap-admin-key-0123456789"


def reset_process_state() -> None:
    """Forget what this process cached between tests: the database was reset
    under it, without the signals that normally tell it. Every module-level
    cache registers itself with core.local_caches."""
    cache.clear()  # with Redis: FLUSHDB of the test database, shared keys included
    local_caches.clear_all()


@pytest.fixture(autouse=True)
def _isolated(settings):
    settings.GATEWAY_ADMIN_KEY = ADMIN_KEY
    settings.RETRY_BACKOFF_BASE = 0.0
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture(scope="session")
def live_gateway(django_db_setup, django_db_blocker):
    # After the test database exists, and stopped (its last usage written) before it is dropped.
    server = LiveGateway()
    yield server
    with django_db_blocker.unblock():
        server.stop()
    # Everything was written by stop(); at interpreter exit the test database is gone.
    atexit.unregister(recorder._flush_at_exit)


@pytest.fixture
def factory() -> Factory:
    return Factory()


@pytest.fixture
def world(db, factory) -> World:
    return World(factory)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def admin_api() -> APIClient:
    client = APIClient()
    client.credentials(**bearer(ADMIN_KEY))
    return client


@pytest.fixture
def as_key():
    """An API client authenticated with the given plaintext key."""

    def make(raw: str) -> APIClient:
        client = APIClient()
        client.credentials(**bearer(raw))
        return client

    return make


@pytest.fixture
def proxy_world(transactional_db, factory) -> World:
    """The tenant world, committed (the live server reads it from its own thread)."""
    return World(factory)


@pytest.fixture
def upstream(proxy_world, factory, mock_upstream):  # noqa: F811 (the imported fixture)
    """An OpenAI-compatible provider on the mock, serving gpt-4o-mini."""
    return factory.make_provider("primary", base_url=mock_upstream.openai_base, api_key="sk-test-upstream-secret-9876")
