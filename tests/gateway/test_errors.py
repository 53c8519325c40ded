from __future__ import annotations

import pytest
from django.urls import path

from core.errors import ERRORS, GatewayError


def explode(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [path("boom", explode)]


def test_unknown_path_is_404_json(db, django_client):
    response = django_client.get("/nowhere/at/all")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "Unknown path: /nowhere/at/all",
        "type": "not_found_error",
        "param": None,
        "code": "not_found",
    }


@pytest.mark.parametrize("debug", [False, True])
def test_unhandled_exception_is_500_json_without_traceback(db, django_client, settings, debug, caplog):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = debug
    django_client.raise_request_exception = False
    response = django_client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert b"secret internal detail" not in response.content and b"Traceback" not in response.content
    assert "secret internal detail" in caplog.text  # logged server-side


def test_request_too_large_is_413(db, admin_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = admin_api.post("/api/v1/tenants/", {"name": "x" * 50, "pad": "y" * 200}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_wrong_method_is_405_json(world, admin_api):
    response = admin_api.put("/admin/gen_key", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_error_code_has_status_and_type():
    for code, (status, error_type) in ERRORS.items():
        body = GatewayError(code, "m").body()["error"]
        assert body == {"message": "m", "type": error_type, "param": None, "code": code}
        assert 400 <= status < 600


def test_api_health_needs_no_key(db, django_client):
    response = django_client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "service": "llm-gateway", "database": "healthy"}
