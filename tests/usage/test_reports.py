from __future__ import annotations

import pytest
from django.db import connection

from usage import reports

pytestmark = pytest.mark.django_db


def work_mem() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        return cursor.fetchone()[0]


def test_reports_get_more_work_mem_for_their_own_transaction_only(django_assert_num_queries):
    if connection.vendor != "postgresql":
        # Nothing to tune elsewhere: the context manager must not even touch the database.
        with django_assert_num_queries(0), reports.roomy_work_mem():
            pass
        return
    before = work_mem()
    with reports.roomy_work_mem():
        assert work_mem() == reports.REPORT_WORK_MEM
    assert work_mem() == before


def test_roomy_work_mem_is_harmless_elsewhere():
    with reports.roomy_work_mem():
        assert reports.summary(reports.last_days(30))["total_requests"] == 0
