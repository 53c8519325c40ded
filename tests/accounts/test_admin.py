from __future__ import annotations

import re

import pytest

from accounts.models import ApiKey, hash_key

pytestmark = pytest.mark.django_db
PLAINTEXT = re.compile(r"llm_[0-9a-f]{32}")


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(staff)
    return client


def test_adding_a_key_shows_its_plaintext_once(world, staff_client):
    response = staff_client.post(
        "/admin/accounts/apikey/add/",
        {
            "user": world.member.pk,
            "name": "from-admin",
            "allowed_models": "[]",
            "quota_period": "total",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    raw = PLAINTEXT.search(response.content.decode()).group(0)
    key = ApiKey.objects.get(name="from-admin")
    assert key.key_hash == hash_key(raw) and key.tenant == world.acme
    assert "no-store" in response["Cache-Control"]
    page = staff_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and key.key_hash not in page


def test_key_list_shows_prefix_never_hash(world, staff_client):
    page = staff_client.get("/admin/accounts/apikey/").content.decode()
    assert world.member_key.prefix in page
    assert world.member_key.key_hash not in page
    assert world.member_raw not in page


def test_revoke_action(world, staff_client):
    response = staff_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_keys", "_selected_action": [world.member_key.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiKey.objects.verify(world.member_raw) is None
    assert ApiKey.objects.verify(world.owner_raw) is not None


def test_rotate_action_shows_new_plaintext_and_old_stops(world, staff_client):
    response = staff_client.post(
        "/admin/accounts/apikey/", {"action": "rotate_keys", "_selected_action": [world.member_key.pk]}
    )
    assert response.status_code == 200
    new_raw = PLAINTEXT.search(response.content.decode()).group(0)
    assert ApiKey.objects.verify(world.member_raw) is None
    assert ApiKey.objects.verify(new_raw).pk == world.member_key.pk


@pytest.mark.parametrize("path", ["/admin/accounts/tenant/", "/admin/accounts/apiuser/", "/admin/accounts/apikey/"])
def test_admin_pages_render(world, staff_client, path):
    assert staff_client.get(path).status_code == 200
    assert staff_client.get(path + "add/").status_code == 200
