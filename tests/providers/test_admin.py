from __future__ import annotations

import pytest

from providers.models import ModelAlias, Override, Price, Provider
from tests.mock_upstream import MockUpstream, status

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-ABCDEF0123456789secret"


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(staff)
    return client


@pytest.fixture
def provider(db) -> Provider:
    provider = Provider.objects.create(name="openai", type="openai_compatible", api_key=SECRET, models=["a", "b"])
    ModelAlias.objects.create(name="fast", provider=provider, model="a")
    Override.objects.create(user_id="alice", service_name=None, provider=provider, model="a")
    Price.objects.create(model="a", input="0.15", output="0.6")
    return provider


def change_form(provider: Provider, **fields) -> dict:
    data = {
        "name": provider.name,
        "display_name": provider.display_name,
        "type": provider.type,
        "base_url": provider.base_url,
        "api_key": "",
        "api_key_env": "",
        "is_enabled": "on",
        "priority": provider.priority,
        "models": '["a", "b"]',
        "rate_limit_rpm": "",
        "rate_limit_tpm": "",
        "timeout": provider.timeout,
        "max_retries": provider.max_retries,
        "custom_headers": "{}",
    }
    data.update(fields)
    return data


@pytest.mark.parametrize(
    "path",
    [
        "/admin/providers/provider/",
        "/admin/providers/provider/{pk}/change/",
        "/admin/providers/provider/add/",
        "/admin/providers/modelalias/",
        "/admin/providers/override/",
        "/admin/providers/price/",
    ],
)
def test_pages_render_and_never_show_the_key(staff_client, provider, path):
    response = staff_client.get(path.format(pk=provider.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert SECRET not in page
    if path == "/admin/providers/provider/":
        assert "sk-...cret" in page


def test_saving_with_an_empty_key_keeps_the_stored_key(staff_client, provider):
    response = staff_client.post(f"/admin/providers/provider/{provider.pk}/change/", change_form(provider, priority=4))
    assert response.status_code == 302, response.content.decode()[:3000]
    provider.refresh_from_db()
    assert provider.api_key == SECRET and provider.priority == 4


def test_a_new_key_replaces_and_clear_removes_it(staff_client, provider):
    url = f"/admin/providers/provider/{provider.pk}/change/"
    assert staff_client.post(url, change_form(provider, api_key="sk-new-key-0000")).status_code == 302
    provider.refresh_from_db()
    assert provider.api_key == "sk-new-key-0000"
    assert staff_client.post(url, change_form(provider, clear_api_key="on")).status_code == 302
    provider.refresh_from_db()
    assert provider.api_key == ""


def test_test_connection_action_reports_success_and_failure(staff_client, provider):
    with MockUpstream() as mock:
        provider.base_url = mock.openai_base
        provider.save()
        action = {"action": "test_connection", "_selected_action": [provider.pk]}
        ok = staff_client.post("/admin/providers/provider/", action, follow=True)
        mock.push(status(500))
        failed = staff_client.post("/admin/providers/provider/", action, follow=True)
    assert "Connection to openai OK." in ok.content.decode()
    page = failed.content.decode()
    assert "Connection to openai failed: upstream answered HTTP 500" in page
    assert SECRET not in page


@pytest.mark.parametrize(
    "field,value",
    [("max_retries", "11"), ("timeout", "0"), ("rate_limit_rpm", "0"), ("models", '["bad model"]'),
     ("base_url", "ftp://example.com"), ("custom_headers", '{"X-Team": 5}')],
)  # fmt: skip
def test_the_form_refuses_what_the_model_rules_refuse(staff_client, provider, field, value):
    """The admin checks a provider's fields by the same rules as the API and the YAML loader."""
    before = Provider.objects.filter(pk=provider.pk).values().get()
    response = staff_client.post(
        f"/admin/providers/provider/{provider.pk}/change/", change_form(provider, **{field: value})
    )
    assert response.status_code == 200  # the form again, with the error
    assert field in response.context["adminform"].form.errors
    assert Provider.objects.filter(pk=provider.pk).values().get() == before
