from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import ADMIN_KEY

pytestmark = pytest.mark.django_db

KEYS_URL = "/api/v1/keys/"


def invalid_key_body() -> dict:
    return {
        "error": {
            "message": "Invalid or missing API key.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


@pytest.mark.parametrize(
    "header",
    [
        lambda raw: {"HTTP_AUTHORIZATION": f"Bearer {raw}"},
        lambda raw: {"HTTP_X_API_KEY": raw},
        lambda raw: {"HTTP_X_SERVICE_KEY": raw},
    ],
    ids=["bearer", "x-api-key", "x-service-key"],
)
def test_each_key_header_authenticates(world, api, header):
    response = api.get(KEYS_URL, **header(world.owner_raw))
    assert response.status_code == 200


def test_bootstrap_admin_key_authenticates_in_every_header(world, api):
    for header in ({"HTTP_AUTHORIZATION": f"Bearer {ADMIN_KEY}"}, {"HTTP_X_API_KEY": ADMIN_KEY}):
        assert api.get(KEYS_URL, **header).status_code == 200


def test_bootstrap_admin_key_unset_is_no_backdoor(world, api, settings):
    settings.GATEWAY_ADMIN_KEY = ""
    assert api.get(KEYS_URL, HTTP_AUTHORIZATION="Bearer ").status_code == 401


def refuse(world, case: str) -> str:
    """Make the owner's admin key unusable in the way `case` names; return the key to present."""
    if case == "unknown":
        return "llm_" + "0" * 32
    if case == "malformed":
        return "not-a-key"
    if case == "revoked":
        world.owner_key.revoke()
    elif case == "expired":
        world.owner_key.expires_at = timezone.now() - timedelta(minutes=1)
        world.owner_key.save()
    elif case == "disabled_user":
        world.owner.is_active = False
        world.owner.save()
    elif case == "disabled_tenant":
        world.acme.is_active = False
        world.acme.save()
    return world.owner_raw


@pytest.mark.parametrize("case", ["unknown", "malformed", "revoked", "expired", "disabled_user", "disabled_tenant"])
def test_every_refused_key_gets_the_same_401(world, api, case):
    raw = refuse(world, case)
    response = api.get(KEYS_URL, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json() == invalid_key_body()


def test_missing_key_gets_401(world, api):
    response = api.get(KEYS_URL)
    assert response.status_code == 401
    assert response.json() == invalid_key_body()
    assert response["WWW-Authenticate"] == "Bearer"


def test_non_bearer_authorization_scheme_is_not_a_key(world, api):
    response = api.get(KEYS_URL, HTTP_AUTHORIZATION=f"Basic {world.owner_raw}")
    assert response.status_code == 401


MANAGEMENT_PATHS = [
    ("get", "/api/v1/tenants/"),
    ("post", "/api/v1/tenants/"),
    ("get", "/api/v1/users/"),
    ("post", "/api/v1/users/"),
    ("get", "/api/v1/keys/"),
    ("post", "/api/v1/keys/"),
    ("post", "/admin/gen_key"),
    ("get", "/admin/list_users"),
    ("post", "/admin/forbid_key"),
]


@pytest.mark.parametrize("method,path", MANAGEMENT_PATHS)
def test_client_key_gets_403_on_management_paths(world, as_key, method, path):
    response = getattr(as_key(world.member_raw), method)(path, {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


@pytest.mark.parametrize("method,path", MANAGEMENT_PATHS)
def test_no_key_gets_401_on_management_paths(world, api, method, path):
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 401


def test_client_key_gets_403_on_its_own_key_object(world, as_key):
    response = as_key(world.member_raw).post(f"/api/v1/keys/{world.member_key.pk}/revoke")
    assert response.status_code == 403


def test_staff_session_is_global_admin(world):
    staff = User.objects.create_user("ops", password="pw-for-tests-only", is_staff=True)
    client = APIClient()
    client.force_login(staff)
    response = client.get("/api/v1/tenants/")
    assert response.status_code == 200
    assert {t["name"] for t in response.json()["results"]} == {"acme", "globex"}


def test_non_staff_session_is_refused(world):
    user = User.objects.create_user("someone", password="pw-for-tests-only")
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/tenants/").status_code == 403


def test_key_auth_is_one_query_when_recently_used(world, as_key, django_assert_num_queries):
    from accounts.auth import authenticate_key

    authenticate_key(world.owner_raw)  # records last use
    with django_assert_num_queries(1):
        assert authenticate_key(world.owner_raw).key.pk == world.owner_key.pk


def test_auth_records_last_use(world, as_key):
    assert world.owner_key.last_used_at is None
    as_key(world.owner_raw).get(KEYS_URL)
    world.owner_key.refresh_from_db()
    assert world.owner_key.last_used_at is not None
