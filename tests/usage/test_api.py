from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/usage/summary",
    "/api/v1/usage/by-provider",
    "/api/v1/usage/by-service",
    "/api/v1/usage/by-model",
    "/api/v1/usage/by-key",
    "/api/v1/usage/by-customer",
    "/api/v1/usage/timeseries",
    "/admin/list_costs",
]


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def data(response) -> list[dict]:
    return ok(response)["data"]


def pick(rows: list[dict], *fields: str) -> list[tuple]:
    return [tuple(row[field] for field in fields) for row in rows]


# --- summary -------------------------------------------------------------------


def test_summary_counts_the_last_30_days_of_every_tenant(usage_rows, admin_api):
    assert ok(admin_api.get("/api/v1/usage/summary")) == {
        "period_days": 30,
        "total_requests": 5,
        "total_cost_usd": 8.5,
        "total_tokens": 2490,
        "cached_requests": 1,
        "error_requests": 1,
        "cache_hit_rate": 0.2,
    }


def test_summary_days_widens_the_window(usage_rows, admin_api):
    body = ok(admin_api.get("/api/v1/usage/summary?days=60"))
    assert (body["period_days"], body["total_requests"], body["total_cost_usd"], body["error_requests"]) == (
        60, 7, 208.5, 2,
    )  # fmt: skip


def test_summary_of_nothing_is_zeros(world, admin_api):
    body = ok(admin_api.get("/api/v1/usage/summary?days=1"))
    assert body == {
        "period_days": 1,
        "total_requests": 0,
        "total_cost_usd": 0.0,
        "total_tokens": 0,
        "cached_requests": 0,
        "error_requests": 0,
        "cache_hit_rate": 0.0,
    }


def test_tenant_admin_summary_counts_only_its_tenant(usage_rows, world, as_key):
    body = ok(as_key(world.owner_raw).get("/api/v1/usage/summary"))
    assert (body["total_requests"], body["total_cost_usd"], body["total_tokens"]) == (4, 1.5, 490)
    assert (body["cached_requests"], body["error_requests"], body["cache_hit_rate"]) == (1, 1, 0.25)
    outsider = ok(as_key(world.outsider_raw).get("/api/v1/usage/summary"))
    assert (outsider["total_requests"], outsider["total_cost_usd"]) == (1, 7.0)


def test_summary_is_one_query(usage_rows, admin_api, django_assert_num_queries):
    with django_assert_num_queries(1):
        ok(admin_api.get("/api/v1/usage/summary"))


# --- by-* ------------------------------------------------------------------------


def test_by_provider_sums_every_column(usage_rows, admin_api):
    body = ok(admin_api.get("/api/v1/usage/by-provider"))
    assert body["period_days"] == 30
    assert body["data"] == [
        {
            "provider": "openai",
            "requests": 3,
            "input_tokens": 1300,
            "output_tokens": 1150,
            "cached_tokens": 50,
            "total_tokens": 2450,
            "cost_usd": 8.5,
            "errors": 0,
            "avg_latency_ms": 466.7,
        },
        {
            "provider": "anthropic",
            "requests": 2,
            "input_tokens": 40,
            "output_tokens": 0,
            "cached_tokens": 0,
            "total_tokens": 40,
            "cost_usd": 0.0,
            "errors": 1,
            "avg_latency_ms": 27.5,
        },
    ]


def test_by_service(usage_rows, admin_api):
    rows = data(admin_api.get("/api/v1/usage/by-service"))
    assert pick(rows, "service", "requests", "cost_usd", "errors") == [("chat", 3, 8.5, 0), ("search", 2, 0.0, 1)]


def test_by_model_groups_by_requested_model(usage_rows, admin_api):
    rows = data(admin_api.get("/api/v1/usage/by-model"))
    assert pick(rows, "model", "requests", "cost_usd") == [
        ("gpt-4o", 2, 7.5),
        ("gpt-4o-mini", 1, 1.0),
        ("claude", 2, 0.0),
    ]


def test_by_key_labels_each_key(usage_rows, world, admin_api):
    rows = data(admin_api.get("/api/v1/usage/by-key"))
    assert pick(rows, "key_id", "key_prefix", "key_name", "requests", "cost_usd") == [
        (world.outsider_key.pk, world.outsider_key.prefix, "outsider-admin", 1, 7.0),
        (world.member_key.pk, world.member_key.prefix, "member-client", 2, 1.5),
        (world.owner_key.pk, world.owner_key.prefix, "owner-admin", 2, 0.0),
    ]


def table_reads(queries) -> list[str]:
    """The SELECTs that read a table (PostgreSQL adds a set_config and savepoints around a report)."""
    return [q["sql"] for q in queries if q["sql"].startswith("SELECT") and ' FROM "' in q["sql"]]


def test_by_key_is_two_reads_however_many_keys(usage_rows, admin_api):
    # The bootstrap admin key needs no query: one GROUP BY, one lookup of the page's keys.
    with CaptureQueriesContext(connection) as queries:
        ok(admin_api.get("/api/v1/usage/by-key"))
    reads = table_reads(queries)
    assert len(reads) == 2
    assert "GROUP BY" in reads[0] and '"accounts_apikey"' in reads[1]


def test_every_report_reads_only_its_window(usage_rows, admin_api):
    with CaptureQueriesContext(connection) as queries:
        for path in ENDPOINTS[:-1]:
            ok(admin_api.get(path))
    usage_reads = [sql for sql in table_reads(queries) if '"usage_usagerecord"' in sql]
    assert len(usage_reads) == len(ENDPOINTS) - 1
    assert all('"usage_usagerecord"."created_at" >=' in sql for sql in usage_reads)


def test_by_customer_keeps_two_tenants_alices_apart(usage_rows, world, admin_api):
    rows = data(admin_api.get("/api/v1/usage/by-customer"))
    assert pick(rows, "tenant_id", "username", "requests", "cost_usd", "total_tokens") == [
        (world.globex.pk, "alice", 1, 7.0, 2000),
        (world.acme.pk, "alice", 2, 1.5, 450),
        (world.acme.pk, "bob", 2, 0.0, 40),
    ]


def test_by_customer_limit_keeps_the_most_expensive(usage_rows, admin_api):
    rows = data(admin_api.get("/api/v1/usage/by-customer?limit=2"))
    assert pick(rows, "username", "cost_usd") == [("alice", 7.0), ("alice", 1.5)]


def test_tenant_admin_groups_only_its_tenant(usage_rows, world, as_key):
    client = as_key(world.owner_raw)
    assert pick(data(client.get("/api/v1/usage/by-customer")), "username", "cost_usd") == [
        ("alice", 1.5),
        ("bob", 0.0),
    ]
    assert pick(data(client.get("/api/v1/usage/by-model")), "model", "cost_usd") == [
        ("gpt-4o-mini", 1.0),
        ("gpt-4o", 0.5),
        ("claude", 0.0),
    ]
    assert world.outsider_key.pk not in [row["key_id"] for row in data(client.get("/api/v1/usage/by-key"))]
    assert pick(data(client.get("/api/v1/usage/by-provider")), "provider", "requests") == [
        ("openai", 2),
        ("anthropic", 2),
    ]


def test_trailing_slash_is_accepted(usage_rows, admin_api):
    assert admin_api.get("/api/v1/usage/by-model/").status_code == 200


def test_unknown_group_is_404(world, admin_api):
    assert admin_api.get("/api/v1/usage/by-colour").status_code == 404


# --- timeseries --------------------------------------------------------------------


def buckets(usage_rows, bucket: str, records=(0, 1, 2, 3, 4)) -> list[tuple[datetime, int]]:
    def trunc(moment: datetime) -> datetime:
        moment = moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(hour=0) if bucket == "day" else moment

    counts = Counter(trunc(usage_rows.at(i)) for i in records)
    return sorted(counts.items())


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_timeseries_buckets_oldest_first(usage_rows, admin_api, bucket):
    body = ok(admin_api.get(f"/api/v1/usage/timeseries?bucket={bucket}"))
    assert (body["period_days"], body["bucket"]) == (30, bucket)
    got = [(datetime.fromisoformat(row["timestamp"]), row["requests"]) for row in body["data"]]
    assert got == buckets(usage_rows, bucket)
    assert sum(row["cost_usd"] for row in body["data"]) == 8.5


def test_timeseries_defaults_to_days(usage_rows, admin_api):
    assert ok(admin_api.get("/api/v1/usage/timeseries"))["bucket"] == "day"


def test_tenant_admin_timeseries_counts_only_its_tenant(usage_rows, world, as_key):
    rows = data(as_key(world.outsider_raw).get("/api/v1/usage/timeseries?bucket=hour"))
    assert [(datetime.fromisoformat(row["timestamp"]), row["requests"]) for row in rows] == buckets(
        usage_rows, "hour", [4]
    )
    assert rows[0]["cost_usd"] == 7.0


# --- bad parameters and who may ask ------------------------------------------------


@pytest.mark.parametrize("days", ["0", "366", "x", "-1", "1.5", "1e3"])
@pytest.mark.parametrize("path", ENDPOINTS[:-1])
def test_bad_days_is_400(world, admin_api, path, days):
    response = admin_api.get(path, {"days": days})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["type"], error["param"]) == ("invalid_request", "invalid_request_error", "days")


@pytest.mark.parametrize("days", ["1", "365"])
def test_days_bounds_are_allowed(world, admin_api, days):
    assert ok(admin_api.get("/api/v1/usage/summary", {"days": days}))["period_days"] == int(days)


@pytest.mark.parametrize("bucket", ["week", "HOUR", "minute"])
def test_bad_bucket_is_400(world, admin_api, bucket):
    response = admin_api.get("/api/v1/usage/timeseries", {"bucket": bucket})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "bucket"


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_bad_limit_is_400(world, admin_api, limit):
    response = admin_api.get("/api/v1/usage/by-customer", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_client_key_is_403(world, as_key, path):
    response = as_key(world.member_raw).get(path)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_key_is_401(world, api, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_staff_session_may_read(usage_rows, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-for-tests-only", is_staff=True))
    assert client.get("/api/v1/usage/summary", HTTP_ACCEPT="application/json").json()["total_requests"] == 5
