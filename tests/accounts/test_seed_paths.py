from __future__ import annotations

import pytest

from accounts.models import ApiKey, ApiUser

pytestmark = pytest.mark.django_db


def test_gen_key_creates_user_and_working_key(world, admin_api, as_key):
    response = admin_api.post("/admin/gen_key", {"username": "bob", "tenant": "acme"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "bob" and body["api_key"].startswith("llm_")
    key = ApiKey.objects.verify(body["api_key"])
    assert key.user.username == "bob" and key.tenant == world.acme


def test_gen_key_without_tenant_uses_default_tenant_for_global_admin(db, admin_api):
    response = admin_api.post("/admin/gen_key", {"username": "solo"}, format="json")
    assert response.status_code == 201
    assert ApiUser.objects.get(username="solo").tenant.name == "default"


def test_tenant_admin_gen_key_stays_in_its_tenant(world, as_key):
    response = as_key(world.owner_raw).post("/admin/gen_key", {"username": "newbie"}, format="json")
    assert response.status_code == 201
    assert ApiUser.objects.get(username="newbie").tenant == world.acme
    response = as_key(world.owner_raw).post("/admin/gen_key", {"username": "x", "tenant": "globex"}, format="json")
    assert response.status_code == 404
    assert not ApiUser.objects.filter(username="x").exists()


def test_gen_key_needs_username(world, admin_api):
    response = admin_api.post("/admin/gen_key", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "username"


def test_list_users_is_scoped(world, admin_api, as_key):
    everyone = {u["username"] for u in admin_api.get("/admin/list_users").json()["users"]}
    assert everyone == {"owner", "member", "outsider"}
    mine = {u["username"] for u in as_key(world.owner_raw).get("/admin/list_users").json()["users"]}
    assert mine == {"owner", "member"}


def test_forbid_key_by_username(world, as_key):
    response = as_key(world.owner_raw).post("/admin/forbid_key", {"username": "member"}, format="json")
    assert response.status_code == 200 and response.json()["revoked"] == 1
    assert ApiKey.objects.verify(world.member_raw) is None


def test_forbid_key_by_api_key(world, admin_api):
    response = admin_api.post("/admin/forbid_key", {"api_key": world.outsider_raw}, format="json")
    assert response.status_code == 200
    assert ApiKey.objects.verify(world.outsider_raw) is None
    assert ApiKey.objects.verify(world.member_raw) is not None


def test_tenant_admin_cannot_forbid_outsider(world, as_key):
    for payload in ({"username": "outsider"}, {"api_key": world.outsider_raw}):
        response = as_key(world.owner_raw).post("/admin/forbid_key", payload, format="json")
        assert response.status_code == 404
    assert ApiKey.objects.verify(world.outsider_raw) is not None


def test_forbid_key_needs_a_target(world, admin_api):
    response = admin_api.post("/admin/forbid_key", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
