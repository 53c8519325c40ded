from __future__ import annotations

import openai
import pytest
from django.test import Client


@pytest.fixture
def client(live_gateway, proxy_world) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_gateway.v1, api_key=proxy_world.member_raw, max_retries=0, timeout=20)


@pytest.fixture
def django_client() -> Client:
    """Django's test client (`client` here is the OpenAI SDK client)."""
    return Client()
