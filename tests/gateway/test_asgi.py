"""The ASGI router as a server runs it: /v1 client paths to the proxy app,
everything else to Django."""

from __future__ import annotations

import json

import pytest
from channels.testing import HttpCommunicator

from gateway.asgi import application
from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.django_db(transaction=True)


async def call(method: str, path: str, body: bytes = b"", headers=None) -> dict:
    communicator = HttpCommunicator(application, method, path, body=body, headers=headers or [])
    return await communicator.get_response(timeout=10)


async def test_v1_client_path_goes_to_the_proxy_app():
    response = await call("POST", "/v1/unknown-endpoint", b"{}")
    assert response["status"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"
    assert (b"content-type", b"application/json") in response["headers"]


async def test_oversized_body_is_413_on_the_proxy_path(settings):
    settings.MAX_REQUEST_BYTES = 10
    response = await call("POST", "/v1/chat/completions", b"x" * 11)
    assert response["status"] == 413
    assert json.loads(response["body"])["error"]["code"] == "request_too_large"


async def test_other_paths_go_to_django():
    response = await call("GET", "/api/v1/health", headers=[(b"host", b"localhost")])
    assert response["status"] == 200
    assert json.loads(response["body"])["database"] == "healthy"


async def test_v1_management_paths_go_to_django():
    headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {ADMIN_KEY}".encode())]
    response = await call("GET", "/v1/config/status", headers=headers)
    assert response["status"] == 200
    assert "sections" in json.loads(response["body"])
