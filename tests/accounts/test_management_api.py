from __future__ import annotations

import pytest

from accounts.models import ApiKey, ApiUser, Tenant, hash_key

pytestmark = pytest.mark.django_db


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- tenants -----------------------------------------------------------------


def test_global_admin_creates_tenant_with_limits(world, admin_api):
    response = admin_api.post(
        "/api/v1/tenants/",
        {"name": "initech", "token_quota": 1000, "budget_usd": "12.50", "quota_period": "monthly", "rpm": 60},
        format="json",
    )
    assert response.status_code == 201, response.content
    tenant = Tenant.objects.get(name="initech")
    assert (tenant.token_quota, str(tenant.budget_usd), tenant.quota_period, tenant.rpm) == (
        1000, "12.500000", "monthly", 60,
    )  # fmt: skip


def test_duplicate_tenant_name_is_409(world, admin_api):
    response = admin_api.post("/api/v1/tenants/", {"name": "acme"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "message": "A tenant named 'acme' already exists.",
        "type": "invalid_request_error",
        "param": "name",
        "code": "conflict",
    }


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"name": ""}, "name"),
        ({"name": "bad name!"}, "name"),
        ({"name": "x", "token_quota": -1}, "token_quota"),
        ({"name": "x", "budget_usd": "lots"}, "budget_usd"),
        ({"name": "x", "quota_period": "weekly"}, "quota_period"),
    ],
)
def test_invalid_tenant_input_is_400(world, admin_api, payload, param):
    response = admin_api.post("/api/v1/tenants/", payload, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("invalid_request", "invalid_request_error", param)
    assert Tenant.objects.count() == 2


def test_malformed_json_is_400(world, admin_api):
    response = admin_api.generic("POST", "/api/v1/tenants/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_tenant_admin_sees_only_its_tenant(world, as_key):
    client = as_key(world.owner_raw)
    assert [t["name"] for t in results(client.get("/api/v1/tenants/"))] == ["acme"]
    assert client.get(f"/api/v1/tenants/{world.acme.pk}/").status_code == 200
    assert client.get(f"/api/v1/tenants/{world.globex.pk}/").status_code == 404


def test_tenant_admin_cannot_create_change_or_delete_tenants(world, as_key):
    client = as_key(world.owner_raw)
    assert client.post("/api/v1/tenants/", {"name": "mine"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/tenants/{world.acme.pk}/", {"token_quota": 10**9}, format="json").status_code == 403
    assert client.delete(f"/api/v1/tenants/{world.globex.pk}/").status_code == 403
    world.acme.refresh_from_db()
    assert world.acme.token_quota is None
    assert Tenant.objects.count() == 2


def test_global_admin_updates_and_deletes_tenant(world, admin_api):
    response = admin_api.patch(f"/api/v1/tenants/{world.globex.pk}/", {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert admin_api.delete(f"/api/v1/tenants/{world.globex.pk}/").status_code == 204
    assert not ApiKey.objects.filter(pk=world.outsider_key.pk).exists()


# --- users -------------------------------------------------------------------


def test_tenant_admin_creates_user_in_own_tenant_without_naming_it(world, as_key):
    response = as_key(world.owner_raw).post("/api/v1/users/", {"username": "carol", "rpm": 5}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["tenant"] == "acme"
    assert ApiUser.objects.get(username="carol").tenant == world.acme


def test_tenant_admin_cannot_create_user_in_other_tenant(world, as_key):
    response = as_key(world.owner_raw).post("/api/v1/users/", {"username": "mole", "tenant": "globex"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tenant"
    assert not ApiUser.objects.filter(username="mole").exists()


def test_global_admin_must_name_the_tenant(world, admin_api):
    response = admin_api.post("/api/v1/users/", {"username": "dave"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tenant"
    response = admin_api.post("/api/v1/users/", {"username": "dave", "tenant": "globex"}, format="json")
    assert response.status_code == 201


def test_duplicate_username_in_tenant_is_409_but_other_tenant_is_fine(world, admin_api):
    response = admin_api.post("/api/v1/users/", {"username": "member", "tenant": "acme"}, format="json")
    assert response.status_code == 409
    response = admin_api.post("/api/v1/users/", {"username": "member", "tenant": "globex"}, format="json")
    assert response.status_code == 201


def test_tenant_admin_never_sees_or_touches_outsider_users(world, as_key):
    client = as_key(world.owner_raw)
    assert {u["username"] for u in results(client.get("/api/v1/users/"))} == {"owner", "member"}
    url = f"/api/v1/users/{world.outsider.pk}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"is_active": False}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    world.outsider.refresh_from_db()
    assert world.outsider.is_active


def test_user_cannot_move_to_another_tenant(world, admin_api):
    response = admin_api.patch(f"/api/v1/users/{world.member.pk}/", {"tenant": "globex"}, format="json")
    assert response.status_code == 400
    world.member.refresh_from_db()
    assert world.member.tenant == world.acme


# --- keys --------------------------------------------------------------------


def test_create_key_returns_plaintext_once(world, as_key):
    client = as_key(world.owner_raw)
    response = client.post(
        "/api/v1/keys/",
        {"user": world.member.pk, "name": "ci", "rpm": 10, "allowed_models": ["gpt-4o-mini"], "expires_in_days": 7},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["api_key"]
    key = ApiKey.objects.get(pk=body["id"])
    assert key.key_hash == hash_key(raw) and key.tenant == world.acme and key.expires_at is not None
    assert body["prefix"] == raw[:12] and "key_hash" not in body
    again = client.get(f"/api/v1/keys/{key.pk}/").json()
    assert "api_key" not in again and raw not in str(again)
    assert as_key(raw).get("/api/v1/keys/").status_code == 403  # works, but is a client key


def test_key_listing_never_shows_hash_or_plaintext(world, admin_api):
    body = admin_api.get("/api/v1/keys/").content.decode()
    assert world.member_key.key_hash not in body
    assert world.member_raw not in body
    assert world.member_key.prefix in body


def test_tenant_admin_cannot_create_key_for_outsider(world, as_key):
    response = as_key(world.owner_raw).post("/api/v1/keys/", {"user": world.outsider.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "user"
    assert ApiKey.objects.filter(user=world.outsider).count() == 1


def test_invalid_model_name_in_allowed_models_is_400(world, admin_api):
    response = admin_api.post(
        "/api/v1/keys/", {"user": world.member.pk, "allowed_models": ["bad model"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "allowed_models"


def test_revoke_stops_the_key(world, as_key):
    owner = as_key(world.owner_raw)
    response = owner.post(f"/api/v1/keys/{world.member_key.pk}/revoke")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert as_key(world.member_raw).get("/api/v1/keys/").status_code == 401


def test_rotate_returns_new_plaintext_and_old_stops(world, as_key):
    owner = as_key(world.owner_raw)
    response = owner.post(f"/api/v1/keys/{world.owner_key.pk}/rotate")
    assert response.status_code == 200
    new_raw = response.json()["api_key"]
    assert as_key(world.owner_raw).get("/api/v1/keys/").status_code == 401
    assert as_key(new_raw).get("/api/v1/keys/").status_code == 200


@pytest.mark.parametrize("action", ["revoke", "rotate"])
def test_tenant_admin_cannot_revoke_or_rotate_outsider_key(world, as_key, action):
    response = as_key(world.owner_raw).post(f"/api/v1/keys/{world.outsider_key.pk}/{action}")
    assert response.status_code == 404
    assert as_key(world.outsider_raw).get("/api/v1/keys/").status_code == 200


def test_tenant_admin_key_list_is_scoped(world, as_key):
    ids = {k["id"] for k in results(as_key(world.owner_raw).get("/api/v1/keys/"))}
    assert ids == {world.owner_key.pk, world.member_key.pk}
    assert as_key(world.owner_raw).get(f"/api/v1/keys/{world.outsider_key.pk}/").status_code == 404
    assert as_key(world.owner_raw).delete(f"/api/v1/keys/{world.outsider_key.pk}/").status_code == 404
    assert ApiKey.objects.filter(pk=world.outsider_key.pk).exists()


def test_key_update_and_delete(world, admin_api):
    url = f"/api/v1/keys/{world.member_key.pk}/"
    response = admin_api.patch(url, {"tpm": 1000, "max_parallel": 2}, format="json")
    assert response.status_code == 200 and response.json()["tpm"] == 1000
    assert admin_api.patch(url, {"user": world.outsider.pk}, format="json").status_code == 400
    assert admin_api.delete(url).status_code == 204


def test_unknown_object_is_404_json(world, admin_api):
    response = admin_api.get("/api/v1/keys/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_browsable_api_renders_for_staff(world, client, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    response = client.get("/api/v1/keys/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"<html" in response.content and world.member_key.prefix.encode() in response.content


def test_schema_and_docs_are_served(db, client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize(
    "field,value",
    [
        ("token_quota", 2**63),
        ("rpm", 2**31),
        ("tpm", 10**11),
        ("budget_usd", "1000000000"),
        ("budget_usd", "0.0000001"),
    ],
)
def test_out_of_range_numbers_are_400_not_a_database_error(world, admin_api, field, value):
    response = admin_api.post("/api/v1/tenants/", {"name": "huge", field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == field
    assert not Tenant.objects.filter(name="huge").exists()
