from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factory import Factory, World

ADMIN_KEY = "test-bootstrap-admin-key-0123456789"


@pytest.fixture(autouse=True)
def _isolated(settings):
    settings.GATEWAY_ADMIN_KEY = ADMIN_KEY
    cache.clear()
    yield
    cache.clear()


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
