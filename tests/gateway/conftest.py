from __future__ import annotations

import openai
import pytest
from django.test import Client

from tests.factory import World


@pytest.fixture
def proxy_world(transactional_db, factory) -> World:
    """The tenant world, committed (the live server reads it from its own thread)."""
    return World(factory)


@pytest.fixture
def upstream(proxy_world, factory, mock_upstream):
    """An OpenAI-compatible provider on the mock, serving gpt-4o-mini."""
    return factory.make_provider("primary", base_url=mock_upstream.openai_base, api_key="sk-test-upstream-secret-9876")


@pytest.fixture
def client(live_gateway, proxy_world) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_gateway.v1, api_key=proxy_world.member_raw, max_retries=0, timeout=20)


@pytest.fixture
def django_client() -> Client:
    """Django's test client (`client` here is the OpenAI SDK client)."""
    return Client()
