from __future__ import annotations

import pytest

from providers.models import ConfigState, Override, Provider
from tests.mock_upstream import MockUpstream, status

pytestmark = pytest.mark.django_db

SECRET = "sk-test-9f8e7d6c5b4a3210SECRETKEY"


def make_provider(name: str = "openai", **fields) -> Provider:
    values = {"type": "openai_compatible", "api_key": SECRET, "models": ["gpt-4o-mini"], **fields}
    return Provider.objects.create(name=name, **values)


def assert_no_secret(response) -> None:
    assert SECRET not in response.content.decode()


# --- /api/v1/providers/ ---------------------------------------------------------


def test_create_provider_returns_201_with_masked_key(db, admin_api):
    response = admin_api.post(
        "/api/v1/providers/",
        {
            "name": "openai",
            "type": "openai",
            "base_url": "https://api.openai.com/v1",
            "api_key": SECRET,
            "models": ["gpt-4o", "org/model:v1"],
            "priority": 5,
            "timeout": 12.5,
            "custom_headers": {"X-Team": "a"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["api_key_masked"] == "sk-...TKEY" and "api_key" not in body
    assert body["models"] == ["gpt-4o", "org/model:v1"] and body["timeout"] == 12.5
    assert_no_secret(response)
    assert Provider.objects.get(name="openai").api_key == SECRET


def test_duplicate_provider_name_is_409(db, admin_api):
    make_provider()
    response = admin_api.post("/api/v1/providers/", {"name": "openai", "type": "echo"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"name": "x", "type": "azure"}, "type"),
        ({"name": "x", "type": "openai", "models": ["bad model"]}, "models"),
        ({"name": "x", "type": "openai", "timeout": 0}, "timeout"),
        ({"name": "x", "type": "openai", "base_url": "ftp://example.com"}, "base_url"),
        ({"name": "x", "type": "openai", "max_retries": 11}, "max_retries"),
        ({"name": "bad name", "type": "openai"}, "name"),
    ],
)
def test_invalid_provider_is_400(db, admin_api, payload, param):
    response = admin_api.post("/api/v1/providers/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_list_and_retrieve_never_show_the_key(world, admin_api, as_key):
    provider = make_provider()
    for client in (admin_api, as_key(world.owner_raw)):
        listing = client.get("/api/v1/providers/")
        assert listing.status_code == 200
        assert listing.json()["results"][0]["api_key_masked"] == "sk-...TKEY"
        assert_no_secret(listing)
        detail = client.get(f"/api/v1/providers/{provider.pk}/")
        assert detail.status_code == 200 and detail.json()["name"] == "openai"
        assert_no_secret(detail)


def test_update_without_key_keeps_it_and_delete_is_204(db, admin_api):
    provider = make_provider()
    response = admin_api.patch(f"/api/v1/providers/{provider.pk}/", {"priority": 7}, format="json")
    assert response.status_code == 200 and response.json()["priority"] == 7
    assert_no_secret(response)
    provider.refresh_from_db()
    assert provider.api_key == SECRET
    assert admin_api.delete(f"/api/v1/providers/{provider.pk}/").status_code == 204
    assert not Provider.objects.exists()


def test_unknown_provider_is_404(db, admin_api):
    assert admin_api.get("/api/v1/providers/999/").status_code == 404
    assert admin_api.post("/api/v1/providers/999/test").status_code == 404


def test_tenant_admin_cannot_change_providers(world, as_key):
    provider = make_provider()
    owner = as_key(world.owner_raw)
    assert owner.post("/api/v1/providers/", {"name": "x", "type": "echo"}, format="json").status_code == 403
    assert owner.patch(f"/api/v1/providers/{provider.pk}/", {"priority": 1}, format="json").status_code == 403
    assert owner.delete(f"/api/v1/providers/{provider.pk}/").status_code == 403
    assert owner.post(f"/api/v1/providers/{provider.pk}/test").status_code == 403


def test_client_key_is_refused_everywhere(world, as_key, tmp_path, settings):
    provider = make_provider()
    override = Override.objects.create(user_id="u", provider=provider, model="m")
    member = as_key(world.member_raw)
    requests = [
        ("get", "/api/v1/providers/"),
        ("get", f"/api/v1/providers/{provider.pk}/"),
        ("post", f"/api/v1/providers/{provider.pk}/test"),
        ("get", "/api/v1/overrides/"),
        ("get", f"/api/v1/overrides/{override.pk}/"),
        ("delete", f"/api/v1/overrides/{override.pk}/"),
        ("get", "/providers"),
        ("get", "/v1/providers/openai/models"),
        ("get", "/v1/providers/openai/models/gpt-4o-mini"),
        ("put", "/v1/providers/openai/model_selection"),
        ("post", "/v1/providers/openai/models/refresh"),
        ("post", "/v1/config/reload"),
        ("get", "/v1/config/status"),
    ]
    for method, path in requests:
        response = getattr(member, method)(path, {}, format="json")
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "insufficient_permissions"


def test_no_key_is_401(db, api):
    for path in ("/api/v1/providers/", "/providers", "/v1/config/status"):
        assert api.get(path).status_code == 401


# --- POST /api/v1/providers/{id}/test ------------------------------------------------


def test_test_endpoint_succeeds_against_openai_compatible_upstream(db, admin_api):
    with MockUpstream() as mock:
        provider = make_provider(base_url=mock.openai_base)
        response = admin_api.post(f"/api/v1/providers/{provider.pk}/test")
        assert mock.last_request.headers["Authorization"] == f"Bearer {SECRET}"
    assert response.status_code == 200
    assert response.json() == {"success": True, "error": None}


def test_test_endpoint_succeeds_against_anthropic_upstream(db, admin_api):
    with MockUpstream() as mock:
        provider = make_provider("claude", type="anthropic", base_url=mock.url)
        response = admin_api.post(f"/api/v1/providers/{provider.pk}/test")
        assert mock.last_request.path == "/v1/models"
        assert mock.last_request.headers["x-api-key"] == SECRET
    assert response.json() == {"success": True, "error": None}


def test_test_endpoint_reports_upstream_failure_without_the_key(db, admin_api):
    with MockUpstream() as mock:
        provider = make_provider(base_url=mock.openai_base)
        mock.push(status(500, body={"error": {"message": f"bad key {SECRET}"}}))
        response = admin_api.post(f"/api/v1/providers/{provider.pk}/test")
    body = response.json()
    assert response.status_code == 200 and body["success"] is False and "500" in body["error"]
    assert_no_secret(response)


def test_test_endpoint_reports_unreachable_upstream(db, admin_api):
    provider = make_provider(base_url="http://127.0.0.1:9/v1", timeout=2)
    response = admin_api.post(f"/api/v1/providers/{provider.pk}/test/")
    assert response.status_code == 200
    assert response.json()["success"] is False and response.json()["error"]
    assert_no_secret(response)


# --- /api/v1/overrides/ ----------------------------------------------------------------


def test_override_create_list_filter_retrieve_delete(db, admin_api):
    make_provider()
    response = admin_api.post(
        "/api/v1/overrides/",
        {"user_id": "alice", "service_name": "billing", "provider": "openai", "model": "gpt-4o"},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["provider"] == "openai" and created["service_name"] == "billing"
    admin_api.post("/api/v1/overrides/", {"user_id": "bob", "provider": "openai", "model": "x"}, format="json")
    assert Override.objects.get(user_id="bob").service_name is None

    listing = admin_api.get("/api/v1/overrides/?user_id=alice").json()["results"]
    assert [o["user_id"] for o in listing] == ["alice"]
    assert admin_api.get(f"/api/v1/overrides/{created['id']}/").json()["model"] == "gpt-4o"
    assert admin_api.delete(f"/api/v1/overrides/{created['id']}/").status_code == 204
    assert admin_api.get(f"/api/v1/overrides/{created['id']}/").status_code == 404


@pytest.mark.parametrize("service", ["billing", None])
def test_duplicate_override_is_409(db, admin_api, service):
    provider = make_provider()
    Override.objects.create(user_id="alice", service_name=service, provider=provider, model="m")
    response = admin_api.post(
        "/api/v1/overrides/",
        {"user_id": "alice", "service_name": service, "provider": "openai", "model": "other"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_override_with_unknown_provider_is_400(db, admin_api):
    response = admin_api.post("/api/v1/overrides/", {"user_id": "a", "provider": "nope", "model": "m"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "provider"


def test_tenant_admin_sees_its_tenants_overrides_and_the_global_ones_of_its_users(world, as_key):
    provider = make_provider()
    Override.objects.create(user_id="member", provider=provider, model="m")  # global, names its user
    Override.objects.create(tenant=world.acme, user_id="customer-7", provider=provider, model="m")
    theirs = Override.objects.create(user_id="outsider", provider=provider, model="m")
    other_tenant = Override.objects.create(tenant=world.globex, user_id="member", provider=provider, model="m")
    owner = as_key(world.owner_raw)
    listing = owner.get("/api/v1/overrides/").json()["results"]
    assert sorted((o["user_id"], o["tenant"]) for o in listing) == [("customer-7", "acme"), ("member", None)]
    assert owner.get(f"/api/v1/overrides/{theirs.pk}/").status_code == 404
    assert owner.get(f"/api/v1/overrides/{other_tenant.pk}/").status_code == 404


def test_tenant_admin_manages_overrides_for_its_own_tenant(world, as_key):
    """CONTRACT section 2: a tenant admin manages its tenant's overrides (it got 403)."""
    make_provider()
    owner = as_key(world.owner_raw)
    payload = {"user_id": "member", "service_name": "s", "provider": "openai", "model": "m"}
    created = owner.post("/api/v1/overrides/", payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["tenant"] == "acme"
    assert Override.objects.get(pk=created.json()["id"]).tenant == world.acme
    assert owner.post("/api/v1/overrides/", payload, format="json").status_code == 409
    changed = owner.patch(f"/api/v1/overrides/{created.json()['id']}/", {"model": "m2"}, format="json")
    assert changed.status_code == 200 and changed.json()["model"] == "m2"
    assert owner.delete(f"/api/v1/overrides/{created.json()['id']}/").status_code == 204
    assert not Override.objects.exists()


def test_tenant_admin_never_touches_another_tenants_or_a_global_override(world, as_key):
    provider = make_provider()
    global_one = Override.objects.create(user_id="member", provider=provider, model="m")
    theirs = Override.objects.create(tenant=world.globex, user_id="outsider", provider=provider, model="m")
    owner = as_key(world.owner_raw)
    payload = {"tenant": "globex", "user_id": "outsider", "provider": "openai", "model": "x"}
    refused = owner.post("/api/v1/overrides/", payload, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tenant"
    assert owner.delete(f"/api/v1/overrides/{global_one.pk}/").status_code == 403
    assert owner.patch(f"/api/v1/overrides/{global_one.pk}/", {"model": "x"}, format="json").status_code == 403
    assert owner.delete(f"/api/v1/overrides/{theirs.pk}/").status_code == 404
    assert as_key(world.member_raw).post("/api/v1/overrides/", payload, format="json").status_code == 403
    assert list(Override.objects.order_by("pk").values_list("model", flat=True)) == ["m", "m"]


def test_global_admin_scopes_an_override_to_a_tenant_or_to_all(world, admin_api):
    make_provider()
    scoped = {"tenant": "globex", "user_id": "bob", "provider": "openai", "model": "m"}
    assert admin_api.post("/api/v1/overrides/", scoped, format="json").json()["tenant"] == "globex"
    everywhere = {"user_id": "bob", "provider": "openai", "model": "m"}
    assert admin_api.post("/api/v1/overrides/", everywhere, format="json").json()["tenant"] is None
    assert admin_api.post("/api/v1/overrides/", everywhere, format="json").status_code == 409


# --- seed-compatible paths ---------------------------------------------------------------


def test_seed_provider_listing(world, admin_api, as_key):
    make_provider(display_name="OpenAI", priority=3)
    for client in (admin_api, as_key(world.owner_raw)):
        response = client.get("/providers")
        assert response.status_code == 200
        assert response.json() == {
            "providers": [
                {
                    "name": "openai",
                    "display_name": "OpenAI",
                    "type": "openai_compatible",
                    "base_url": "",
                    "models": ["gpt-4o-mini"],
                    "enabled": True,
                    "priority": 3,
                    "api_key_masked": "sk-...TKEY",
                }
            ]
        }
        assert_no_secret(response)


def test_provider_models_lists_available_and_selected(db, admin_api):
    make_provider(models=["gpt-4o-mini"], available_models=["gpt-4o", "gpt-4o-mini", "meta/llama:3"])
    response = admin_api.get("/v1/providers/openai/models")
    assert response.json() == {
        "object": "list",
        "data": [
            {"id": "gpt-4o", "object": "model", "owned_by": "openai", "selected": False},
            {"id": "gpt-4o-mini", "object": "model", "owned_by": "openai", "selected": True},
            {"id": "meta/llama:3", "object": "model", "owned_by": "openai", "selected": False},
        ],
    }
    detail = admin_api.get("/v1/providers/openai/models/meta/llama:3")
    assert detail.status_code == 200 and detail.json()["id"] == "meta/llama:3"
    missing = admin_api.get("/v1/providers/openai/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert admin_api.get("/v1/providers/ghost/models").status_code == 404


def test_model_selection_sets_models(world, admin_api, as_key):
    make_provider()
    payload = {"models": ["gpt-4o", "org/m:1", "gpt-4o"]}
    assert (
        as_key(world.owner_raw).put("/v1/providers/openai/model_selection", payload, format="json").status_code == 403
    )
    response = admin_api.put("/v1/providers/openai/model_selection", payload, format="json")
    assert response.status_code == 200 and response.json()["models"] == ["gpt-4o", "org/m:1"]
    assert_no_secret(response)
    assert Provider.objects.get(name="openai").models == ["gpt-4o", "org/m:1"]
    bad = admin_api.put("/v1/providers/openai/model_selection", {"models": ["no spaces"]}, format="json")
    assert bad.status_code == 400
    assert admin_api.put("/v1/providers/ghost/model_selection", payload, format="json").status_code == 404


def test_refresh_reads_the_upstream_model_list(db, admin_api):
    with MockUpstream() as mock:
        mock.models = ["a", "b"]
        make_provider(base_url=mock.openai_base, models=["b"])
        response = admin_api.post("/v1/providers/openai/models/refresh")
    assert response.status_code == 200, response.content
    assert [(m["id"], m["selected"]) for m in response.json()["data"]] == [("a", False), ("b", True)]
    assert Provider.objects.get(name="openai").available_models == ["a", "b"]


def test_refresh_against_anthropic_upstream(db, admin_api):
    with MockUpstream() as mock:
        mock.models = ["claude-3-5-sonnet"]
        make_provider("claude", type="anthropic", base_url=mock.url, models=[])
        response = admin_api.post("/v1/providers/claude/models/refresh")
    assert [m["id"] for m in response.json()["data"]] == ["claude-3-5-sonnet"]


def test_refresh_upstream_failure_is_502_without_the_key(world, admin_api, as_key):
    with MockUpstream() as mock:
        make_provider(base_url=mock.openai_base, available_models=["old"])
        assert as_key(world.owner_raw).post("/v1/providers/openai/models/refresh").status_code == 403
        mock.push(status(500))
        response = admin_api.post("/v1/providers/openai/models/refresh")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error" and "500" in response.json()["error"]["message"]
    assert_no_secret(response)
    assert Provider.objects.get(name="openai").available_models == ["old"]


# --- /v1/config ------------------------------------------------------------------------------

GOOD = """
providers:
  - {name: echo, type: echo, models: [echo]}
model_aliases:
  quick: [{provider: echo, model: echo}]
prices:
  echo: {input: 0, output: 0}
cache: {ttl: 5}
"""


def test_config_reload_applies_the_configured_file(world, admin_api, as_key, tmp_path, settings):
    settings.GATEWAY_CONFIG = str(tmp_path / "gateway.yaml")
    (tmp_path / "gateway.yaml").write_text(GOOD)
    assert as_key(world.owner_raw).post("/v1/config/reload").status_code == 403
    response = admin_api.post("/v1/config/reload")
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "summary": {"providers": 1, "aliases": 1, "prices": 1, "overrides": 0}}
    assert Provider.objects.get(name="echo").from_config

    status_response = as_key(world.owner_raw).get("/v1/config/status")
    assert status_response.status_code == 200
    body = status_response.json()
    assert body["loaded"] is True and body["source"] == settings.GATEWAY_CONFIG
    assert body["models"] == ["echo", "quick"] and body["providers"] == {"total": 1, "enabled": 1}
    assert body["sections"]["cache"]["ttl"] == 5 and body["sections"]["guardrails"] == {"enabled": False}


def test_config_reload_rejects_a_bad_file_and_changes_nothing(db, admin_api, tmp_path, settings):
    settings.GATEWAY_CONFIG = str(tmp_path / "gateway.yaml")
    (tmp_path / "gateway.yaml").write_text(GOOD)
    admin_api.post("/v1/config/reload")
    before = (list(Provider.objects.values()), list(ConfigState.objects.values()))
    (tmp_path / "gateway.yaml").write_text(
        f"providers:\n  - {{name: echo, type: nope, api_key: {SECRET}}}\nprices:\n  echo: {{input: -1, output: 0}}\n"
    )
    response = admin_api.post("/v1/config/reload")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == {
        "message": "config rejected: 2 error(s)",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request",
    }
    assert body["errors"][0].startswith("providers[0] (echo).type: must be one of")
    assert body["errors"][1].startswith("prices.echo.input: must be a non-negative number")
    assert_no_secret(response)
    assert (list(Provider.objects.values()), list(ConfigState.objects.values())) == before


def test_config_reload_of_a_missing_file_is_400(db, admin_api, tmp_path, settings):
    settings.GATEWAY_CONFIG = str(tmp_path / "missing.yaml")
    response = admin_api.post("/v1/config/reload")
    assert response.status_code == 400 and "file not found" in response.json()["errors"][0]


def test_config_status_before_any_config(db, admin_api):
    body = admin_api.get("/v1/config/status").json()
    assert body["loaded"] is False and body["source"] is None
    assert body["sections"]["cache"] == {"enabled": False, "ttl": 3600, "max_entries": 10000}
