"""/api/schema/ is a valid OpenAPI 3 document of the whole management API, generated
without a drf-spectacular warning; /api/docs/ renders from files the gateway serves."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

ASSET = re.compile(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"')


def test_schema_is_a_valid_openapi_3_document(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = response.json()
    validate(document)  # raises on anything OpenAPI 3 does not allow
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for expected in (
        "/api/v1/tenants/", "/api/v1/keys/{id}/rotate/", "/api/v1/providers/", "/api/v1/usage/summary/",
        "/admin/gen_key", "/v1/config/status", "/health", "/api/v1/health", "/api/v1/health/providers", "/metrics",
    ):  # fmt: skip
        assert expected in paths, expected
    schemes = document["components"]["securitySchemes"]
    assert {schemes[name]["type"] for name in ("bearerKey", "apiKeyHeader", "serviceKeyHeader")} == {"http", "apiKey"}
    assert paths["/health"]["get"]["security"] == [{}]  # no key needed


def test_generating_the_schema_warns_of_nothing(tmp_path):
    # The same run as `manage.py spectacular --validate --fail-on-warn`: any warning
    # or error (printed to stderr, shown by pytest on failure) or an invalid
    # document raises. The counts are per process: start from none.
    GENERATOR_STATS.reset()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert not GENERATOR_STATS


def test_docs_page_loads_everything_from_the_gateway(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert not re.search(r"https?://", html)  # no CDN, no online validator
    assets = ASSET.findall(html)
    assert any(url.endswith(".js") for url in assets) and any(url.endswith(".css") for url in assets)
    for url in assets:
        assert url.startswith("/static/"), url
        served = api.get(url)
        assert served.status_code == 200, url
        assert b"".join(served.streaming_content), url
