from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def costs(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["costs"]


def iso(hours_ago: float) -> str:
    return (timezone.now() - timedelta(hours=hours_ago)).isoformat()


def summary(rows: list[dict]) -> list[tuple]:
    return [(row["tenant_id"], row["username"], row["total_requests"], row["total_cost_usd"]) for row in rows]


def test_default_is_the_last_24_hours(usage_rows, world, admin_api):
    rows = costs(admin_api.get("/admin/list_costs"))
    assert rows == [
        {
            "tenant_id": world.globex.pk,
            "username": "alice",
            "total_input_tokens": 1000,
            "total_output_tokens": 1000,
            "total_cached_tokens": 0,
            "total_requests": 1,
            "total_cost_usd": 7.0,
        },
        {
            "tenant_id": world.acme.pk,
            "username": "alice",
            "total_input_tokens": 100,
            "total_output_tokens": 50,
            "total_cached_tokens": 0,
            "total_requests": 1,
            "total_cost_usd": 0.5,
        },
    ]


def test_last_hours(usage_rows, world, admin_api):
    rows = costs(admin_api.get("/admin/list_costs?last_hours=72"))
    assert summary(rows) == [(world.globex.pk, "alice", 1, 7.0), (world.acme.pk, "alice", 2, 1.5)]
    assert rows[1]["total_cached_tokens"] == 50


def test_start_and_end_time(usage_rows, world, admin_api):
    rows = costs(admin_api.get("/admin/list_costs", {"start_time": iso(100), "end_time": iso(1)}))
    assert summary(rows) == [
        (world.globex.pk, "alice", 1, 7.0),
        (world.acme.pk, "alice", 2, 1.5),
        (world.acme.pk, "bob", 1, 0.0),
    ]


def test_end_time_alone_means_the_24_hours_before_it(usage_rows, world, admin_api):
    rows = costs(admin_api.get("/admin/list_costs", {"end_time": iso(2.5)}))
    assert summary(rows) == [(world.globex.pk, "alice", 1, 7.0)]


def test_start_time_alone_runs_to_now_and_takes_z_and_naive_utc(usage_rows, world, admin_api):
    start = (timezone.now() - timedelta(hours=35)).replace(tzinfo=None)
    for value in (start.isoformat() + "Z", start.isoformat()):
        rows = costs(admin_api.get("/admin/list_costs", {"start_time": value}))
        assert summary(rows) == [(world.globex.pk, "alice", 1, 7.0), (world.acme.pk, "alice", 2, 1.5)]


def test_unencoded_plus_of_an_offset_is_understood(usage_rows, admin_api):
    start = (timezone.now() - timedelta(hours=4)).replace(microsecond=0).isoformat()  # ...+00:00
    assert len(costs(admin_api.get(f"/admin/list_costs?start_time={start}"))) == 2


def test_by_model_adds_model_costs(usage_rows, world, admin_api):
    rows = costs(admin_api.get("/admin/list_costs?last_hours=72&by_model=true"))
    acme_alice = rows[1]
    assert acme_alice["model_costs"] == [
        {
            "model": "gpt-4o-mini",
            "total_input_tokens": 200,
            "total_output_tokens": 100,
            "total_cached_tokens": 50,
            "total_requests": 1,
            "total_cost_usd": 1.0,
        },
        {
            "model": "gpt-4o",
            "total_input_tokens": 100,
            "total_output_tokens": 50,
            "total_cached_tokens": 0,
            "total_requests": 1,
            "total_cost_usd": 0.5,
        },
    ]
    assert [model["model"] for model in rows[0]["model_costs"]] == ["gpt-4o"]


def test_without_by_model_there_are_no_model_costs(usage_rows, admin_api):
    for query in ("", "?by_model=false"):
        assert all("model_costs" not in row for row in costs(admin_api.get(f"/admin/list_costs{query}")))


def test_tenant_admin_sees_only_its_tenant(usage_rows, world, as_key):
    rows = costs(as_key(world.owner_raw).get("/admin/list_costs?last_hours=200&by_model=true"))
    assert summary(rows) == [(world.acme.pk, "alice", 2, 1.5), (world.acme.pk, "bob", 2, 0.0)]


def test_nothing_in_range_is_an_empty_list(world, admin_api):
    assert costs(admin_api.get("/admin/list_costs")) == []


@pytest.mark.parametrize(
    "params,param",
    [
        ({"last_hours": "24", "start_time": "2025-01-01T00:00:00Z"}, "last_hours"),
        ({"last_hours": "24", "end_time": "2025-01-01T00:00:00Z"}, "last_hours"),
        ({"last_hours": "0"}, "last_hours"),
        ({"last_hours": "soon"}, "last_hours"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": "2025-13-01T00:00:00"}, "start_time"),
        ({"end_time": "2025-01-01T25:00:00Z"}, "end_time"),
        ({"start_time": "2025-01-02T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"}, "end_time"),
        ({"by_model": "maybe"}, "by_model"),
    ],
)
def test_bad_parameters_are_400(world, admin_api, params, param):
    response = admin_api.get("/admin/list_costs", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)
