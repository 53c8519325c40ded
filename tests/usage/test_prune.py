from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.usage.records import make_record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def prune(*args) -> str:
    out = StringIO()
    call_command("prune_usage", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def aged(db) -> dict[str, list[str]]:
    old = [make_record(ago=timedelta(days=31 + i)) for i in range(5)]
    new = [make_record(ago=timedelta(days=29)), make_record(ago=timedelta(hours=1))]
    UsageRecord.objects.bulk_create(old + new)
    return {"old": [r.request_id for r in old], "new": [r.request_id for r in new]}


def test_deletes_only_rows_older_than_n_days(aged):
    out = prune("--older-than-days", "30")
    assert "Deleted 5 usage record(s)" in out
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == sorted(aged["new"])


def test_deletes_in_batches_until_none_are_left(aged):
    with CaptureQueriesContext(connection) as queries:
        out = prune("--older-than-days", "30", "--batch-size", "2")
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert all(" IN (" in sql for sql in deletes)
    assert "Deleted 5 usage record(s)" in out
    assert UsageRecord.objects.count() == 2


def test_nothing_old_deletes_nothing(aged):
    assert "Deleted 0 usage record(s)" in prune("--older-than-days", "60")
    assert UsageRecord.objects.count() == 7


@pytest.mark.parametrize(
    "args",
    [
        ["--older-than-days", "0"],
        ["--older-than-days", "-3"],
        ["--older-than-days", "week"],
        ["--older-than-days", "30", "--batch-size", "0"],
        [],
    ],
)
def test_bad_arguments_fail_and_delete_nothing(aged, args):
    with pytest.raises(CommandError):
        prune(*args)
    assert UsageRecord.objects.count() == 7


def test_cli_error_is_one_line_with_nonzero_exit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "cli.sqlite3")
    for value in ("0", "x"):
        done = subprocess.run(
            [sys.executable, "manage.py", "prune_usage", "--older-than-days", value],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "--older-than-days" in done.stderr
