"""/v1/rules and /v1/alerts: CRUD by name, validation naming the field, filters, acknowledging, tenant scope."""

from __future__ import annotations

import pytest

from alerts.models import Alert, AlertRule, AlertStatus
from tests.alerts.conftest import make_rule

pytestmark = pytest.mark.django_db


def rule_body(**fields) -> dict:
    body = {"name": "high-errors", "metric_path": "summary.error_rate", "condition": ">", "threshold": 0.2}
    body.update(fields)
    return body


def alert_of(rule: AlertRule, **fields) -> Alert:
    values = dict(
        rule=rule, rule_name=rule.name, tenant=rule.tenant, severity=rule.severity, metric_path=rule.metric_path,
        condition=rule.condition, threshold=rule.threshold, value=1.0, message=f"{rule.name} fired",
    )  # fmt: skip
    values.update(fields)
    return Alert.objects.create(**values)


# --------------------------------------------------------------------------- rules


def test_create_read_update_delete_a_rule_by_name(admin_api, world):
    created = admin_api.post(
        "/v1/rules",
        rule_body(channels=["log", "email", "log"], email_to=["ops@example.com"], severity="critical"),
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["channels"] == ["log", "email"]  # duplicates dropped
    assert (body["tenant"], body["enabled"], body["cooldown_minutes"], body["last_fired_at"]) == (None, True, 15, None)

    assert admin_api.get("/v1/rules/high-errors").json()["severity"] == "critical"
    assert [r["name"] for r in admin_api.get("/v1/rules").json()["results"]] == ["high-errors"]

    updated = admin_api.put(
        "/v1/rules/high-errors", rule_body(threshold=0.3, tenant="acme", metric_path="tenants.acme.budget_used_ratio")
    )
    assert updated.status_code == 200, updated.content
    assert (updated.json()["threshold"], updated.json()["tenant"]) == (0.3, "acme")

    assert admin_api.delete("/v1/rules/high-errors").status_code == 204
    assert admin_api.get("/v1/rules/high-errors").status_code == 404


def test_a_rule_name_with_dots_is_its_address(admin_api, db):
    assert admin_api.post("/v1/rules", rule_body(name="gw.errors"), format="json").status_code == 201
    assert admin_api.get("/v1/rules/gw.errors").json()["name"] == "gw.errors"
    assert admin_api.get("/v1/rules/gw.errors/").status_code == 200


def test_a_taken_name_is_a_conflict(admin_api, db):
    make_rule("high-errors")
    response = admin_api.post("/v1/rules", rule_body(), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["param"] == "name"


@pytest.mark.parametrize(
    "fields, param, words",
    [
        ({"metric_path": "latency"}, "metric_path", "Unknown metric path"),
        ({"metric_path": "providers.nowhere.error_rate"}, "metric_path", "No provider named"),
        ({"metric_path": "summary.latency"}, "metric_path", "Unknown summary figure"),
        ({"metric_path": "tenants.nowhere.budget_used_ratio"}, "metric_path", "No tenant named"),
        ({"condition": "=>"}, "condition", "not a valid choice"),
        ({"severity": "fatal"}, "severity", "not a valid choice"),
        ({"threshold": "lots"}, "threshold", "number"),
        ({"cooldown_minutes": -1}, "cooldown_minutes", ""),
        ({"channels": ["log", "sms"]}, "channels", "Unknown channel 'sms'"),
        ({"channels": "log"}, "channels", ""),
        ({"channels": ["webhook"]}, "webhook_url", "needs a webhook_url"),
        ({"channels": ["webhook"], "webhook_url": "not a url"}, "webhook_url", ""),
        ({"channels": ["slack"]}, "slack_webhook_url", "needs a slack_webhook_url"),
        ({"channels": ["email"]}, "email_to", "at least one address"),
        ({"channels": ["email"], "email_to": ["nobody"]}, "email_to", "'nobody' is not an email address"),
        ({"name": "two words"}, "name", ""),
        ({"metric_path": ""}, "metric_path", ""),
    ],
)
def test_invalid_rules_are_400_naming_the_field(admin_api, db, fields, param, words):
    response = admin_api.post("/v1/rules", rule_body(**fields), format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)
    assert words in error["message"]
    assert not AlertRule.objects.exists()


def test_an_invalid_update_changes_nothing(admin_api, db):
    make_rule("high-errors")
    response = admin_api.patch("/v1/rules/high-errors", {"channels": ["webhook"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "webhook_url"
    assert AlertRule.objects.get().channels == ["log"]


# --------------------------------------------------------------------------- alerts


def test_alerts_are_listed_with_filters(admin_api, db):
    rule = make_rule("high-errors", severity="critical")
    alert_of(rule)
    alert_of(rule, severity="warning", status=AlertStatus.RESOLVED)
    alert_of(rule, severity="warning", status=AlertStatus.ACKNOWLEDGED)

    def listed(query: str = "") -> list[tuple[str, str]]:
        response = admin_api.get("/v1/alerts" + query)
        assert response.status_code == 200, response.content
        return sorted((a["severity"], a["status"]) for a in response.json()["results"])

    assert len(listed()) == 3
    assert listed("?severity=critical") == [("critical", "active")]
    assert listed("?status=resolved") == [("warning", "resolved")]
    assert listed("?status=open") == [("critical", "active"), ("warning", "acknowledged")]
    assert listed("?severity=warning&status=acknowledged") == [("warning", "acknowledged")]
    assert len(listed("?rule=high-errors")) == 3 and listed("?rule=other") == []


@pytest.mark.parametrize("query, param", [("?severity=fatal", "severity"), ("?status=closed", "status")])
def test_a_bad_filter_is_400_naming_it(admin_api, db, query, param):
    response = admin_api.get("/v1/alerts" + query)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_acknowledge_an_alert(admin_api, db):
    alert = alert_of(make_rule("high-errors"))
    response = admin_api.post(f"/v1/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["acknowledged_by"]) == ("acknowledged", "gateway-admin")
    assert body["acknowledged_at"] is not None
    # Again: nothing changes.
    again = admin_api.post(f"/v1/alerts/{alert.pk}/acknowledge").json()
    assert again["acknowledged_at"] == body["acknowledged_at"]


def test_a_resolved_alert_cannot_be_acknowledged(admin_api, db):
    alert = alert_of(make_rule("high-errors"), status=AlertStatus.RESOLVED)
    response = admin_api.post(f"/v1/alerts/{alert.pk}/acknowledge")
    assert response.status_code == 409
    assert Alert.objects.get().acknowledged_at is None


def test_an_unknown_alert_is_404(admin_api, db):
    assert admin_api.post("/v1/alerts/999/acknowledge").status_code == 404


# --------------------------------------------------------------------------- tenant scope


@pytest.fixture
def rules(world) -> dict[str, AlertRule]:
    return {
        "acme": make_rule("acme-budget", tenant=world.acme, metric_path="tenants.acme.budget_used_ratio"),
        "globex": make_rule("globex-budget", tenant=world.globex, metric_path="tenants.globex.budget_used_ratio"),
        "global": make_rule("gateway-errors"),
    }


def test_a_tenant_admin_sees_only_its_tenants_rules(as_key, world, rules):
    owner = as_key(world.owner_raw)
    assert [r["name"] for r in owner.get("/v1/rules").json()["results"]] == ["acme-budget"]
    assert owner.get("/v1/rules/acme-budget").status_code == 200
    for name in ("globex-budget", "gateway-errors"):
        assert owner.get(f"/v1/rules/{name}").status_code == 404
        assert owner.put(f"/v1/rules/{name}", rule_body(name=name), format="json").status_code == 404
        assert owner.delete(f"/v1/rules/{name}").status_code == 404
    assert AlertRule.objects.count() == 3


def test_a_tenant_admins_rule_is_its_tenants(as_key, world):
    owner = as_key(world.owner_raw)
    for path in ("tenants.acme.tokens_used_ratio", f"keys.{world.member_key.prefix}.budget_used_ratio"):
        response = owner.post("/v1/rules", rule_body(name=f"r{len(path)}", metric_path=path), format="json")
        assert response.status_code == 201, response.content
        assert response.json()["tenant"] == "acme"


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"metric_path": "tenants.globex.budget_used_ratio"}, "metric_path"),
        ({"metric_path": "keys.{outsider}.budget_used_ratio"}, "metric_path"),
        ({"metric_path": "summary.error_rate"}, "metric_path"),
        ({"metric_path": "tenants.acme.budget_used_ratio", "tenant": "globex"}, "tenant"),
    ],
)
def test_a_tenant_admin_cannot_watch_another_tenant(as_key, world, fields, param):
    fields = {k: v.format(outsider=world.outsider_key.prefix) for k, v in fields.items()}
    response = as_key(world.owner_raw).post("/v1/rules", rule_body(**fields), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param
    assert not AlertRule.objects.exists()


def test_a_tenant_admin_sees_and_acknowledges_only_its_tenants_alerts(as_key, world, rules):
    ours, theirs, global_ = (alert_of(rules[name]) for name in ("acme", "globex", "global"))
    owner = as_key(world.owner_raw)
    assert [a["id"] for a in owner.get("/v1/alerts").json()["results"]] == [ours.pk]
    assert owner.get(f"/v1/alerts/{theirs.pk}").status_code == 404
    for other in (theirs, global_):
        assert owner.post(f"/v1/alerts/{other.pk}/acknowledge").status_code == 404
    response = owner.post(f"/v1/alerts/{ours.pk}/acknowledge")
    assert response.json()["acknowledged_by"] == f"owner (key {world.owner_key.prefix}…)"
    assert Alert.objects.filter(status=AlertStatus.ACKNOWLEDGED).count() == 1


@pytest.mark.parametrize(
    "method, path",
    [("get", "/v1/rules"), ("post", "/v1/rules"), ("get", "/v1/rules/acme-budget"), ("get", "/v1/alerts")],
)
def test_client_keys_are_refused(as_key, world, rules, method, path):
    response = getattr(as_key(world.member_raw), method)(path, rule_body(), format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_a_client_key_cannot_acknowledge(as_key, world, rules):
    alert = alert_of(rules["acme"])
    assert as_key(world.member_raw).post(f"/v1/alerts/{alert.pk}/acknowledge").status_code == 403
    assert Alert.objects.get().status == AlertStatus.ACTIVE


def test_no_key_is_401(api, db):
    assert api.get("/v1/rules").status_code == 401
    assert api.get("/v1/alerts").status_code == 401
