from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_management_endpoint_is_rate_limited_with_retry_after(world, as_key, settings):
    settings.MANAGEMENT_RATE_LIMIT = "3/m"
    client = as_key(world.owner_raw)
    assert [client.get("/api/v1/users/").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/v1/users/")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["type"] == "rate_limit_error"
    assert 1 <= int(refused["Retry-After"]) <= 60 and error["retry_after"] == int(refused["Retry-After"])


def test_limits_are_per_endpoint_and_per_caller(world, as_key, admin_api, settings):
    settings.MANAGEMENT_RATE_LIMIT = "2/m"
    owner = as_key(world.owner_raw)
    for _ in range(2):
        owner.get("/api/v1/users/")
    assert owner.get("/api/v1/users/").status_code == 429
    assert owner.get("/api/v1/keys/").status_code == 200  # another endpoint
    assert as_key(world.outsider_raw).get("/api/v1/users/").status_code == 200  # another caller
    assert admin_api.get("/admin/list_users").status_code == 200


def test_health_is_never_rate_limited(db, client, settings):
    settings.MANAGEMENT_RATE_LIMIT = "1/m"
    assert [client.get("/api/v1/health").status_code for _ in range(3)] == [200, 200, 200]


def test_empty_rate_turns_it_off(world, as_key, settings):
    settings.MANAGEMENT_RATE_LIMIT = ""
    client = as_key(world.owner_raw)
    assert {client.get("/api/v1/users/").status_code for _ in range(5)} == {200}
