"""The admin for alert rules (the API's validation, through the model) and alerts."""

from __future__ import annotations

import pytest

from alerts.models import Alert, AlertRule, AlertStatus
from tests.alerts.conftest import make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(staff)
    return client


def rule_form(**fields) -> dict:
    data = {
        "name": "high-errors",
        "description": "",
        "tenant": "",
        "enabled": "on",
        "metric_path": "summary.error_rate",
        "condition": ">",
        "threshold": "0.2",
        "severity": "warning",
        "cooldown_minutes": "15",
        "channels": '["log"]',
        "webhook_url": "",
        "slack_webhook_url": "",
        "email_to": "[]",
    }
    data.update(fields)
    return data


@pytest.fixture
def alert(db) -> Alert:
    return make_rule("high-errors").fire(0.9)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/alerts/alertrule/",
        "/admin/alerts/alertrule/?enabled__exact=1",
        "/admin/alerts/alertrule/add/",
        "/admin/alerts/alert/",
        "/admin/alerts/alert/?severity__exact=warning&status__exact=active",
    ],
)
def test_pages_open(staff_client, alert, path):
    assert staff_client.get(path).status_code == 200


def test_alert_pages_are_read_only(staff_client, alert):
    page = staff_client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert page.status_code == 200 and b'name="value"' not in page.content
    assert staff_client.get("/admin/alerts/alert/add/").status_code == 403


def test_a_rule_is_created_in_the_admin(staff_client, world):
    response = staff_client.post(
        "/admin/alerts/alertrule/add/",
        rule_form(tenant=world.acme.pk, metric_path="tenants.acme.budget_used_ratio", channels='["log", "log"]'),
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.tenant, rule.channels) == (world.acme, ["log"])


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"metric_path": "providers.nowhere.error_rate"}, "metric_path", "No provider named"),
        ({"channels": '["sms"]'}, "channels", "Unknown channel"),
        ({"channels": '["webhook"]'}, "webhook_url", "needs a webhook_url"),
        ({"channels": '["email"]', "email_to": '["nobody"]'}, "email_to", "not an email address"),
        ({"metric_path": "summary.error_rate", "tenant": "{acme}"}, "metric_path", "may watch only"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(staff_client, world, fields, field, words):
    fields = {k: v.format(acme=world.acme.pk) for k, v in fields.items()}
    response = staff_client.post("/admin/alerts/alertrule/add/", rule_form(**fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field])
    assert not AlertRule.objects.exists()


def test_enable_and_disable_actions(staff_client, db):
    rule = make_rule("high-errors")
    for action, enabled in (("disable_rules", False), ("enable_rules", True)):
        staff_client.post("/admin/alerts/alertrule/", {"action": action, "_selected_action": [rule.pk]})
        rule.refresh_from_db()
        assert rule.enabled is enabled


def test_acknowledge_action(staff_client, alert):
    resolved = make_rule("other").fire(1.0)
    resolved.resolve()
    staff_client.post("/admin/alerts/alert/", {"action": "acknowledge", "_selected_action": [alert.pk, resolved.pk]})
    alert.refresh_from_db()
    resolved.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, "root")
    assert resolved.status == AlertStatus.RESOLVED  # stays resolved
