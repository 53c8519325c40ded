"""The evaluator inside the server: started by ASGI lifespan, or by the first
request when the server sends no lifespan (Daphne); evaluating periodically."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from alerts import scheduler
from alerts.apps import check_evaluation_interval
from alerts.models import Alert
from gateway.asgi import HttpDispatcher
from tests.alerts.conftest import make_rule
from tests.usage.records import make_record
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def no_task():
    """No evaluator task of an earlier test's loop in the way, and none left behind."""
    scheduler._task = None
    yield
    await scheduler.stop()


@pytest.fixture
def failing(factory):
    factory.make_provider("primary")
    make_rule("primary-errors", metric_path="providers.primary.error_rate")
    UsageRecord.objects.bulk_create([make_record(ago=timedelta(minutes=1), provider="primary", status=502)])


async def until(condition, timeout: float = 10.0) -> None:
    def check() -> bool:
        try:
            return condition()
        finally:
            connections.close_all()  # asgiref's thread keeps none open past the test

    deadline = asyncio.get_running_loop().time() + timeout
    while not await sync_to_async(check)():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_lifespan_starts_the_evaluator_which_evaluates_periodically(settings, no_task, failing):
    settings.ALERT_EVALUATION_SECONDS = 0.1
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    server = asyncio.create_task(scheduler.lifespan({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await until(lambda: sent == [{"type": "lifespan.startup.complete"}])
    task = scheduler.running()
    assert task is not None and task.get_name() == "alert-evaluator"
    await until(Alert.objects.exists)

    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(server, 10)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert task.done() and scheduler.running() is None


async def test_without_lifespan_the_first_request_starts_it(settings, no_task):
    settings.ALERT_EVALUATION_SECONDS = 60
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])

    dispatcher = HttpDispatcher(app, app)
    await dispatcher({"type": "http", "path": "/v1/chat/completions"}, None, None)
    task = scheduler.running()
    assert dispatcher.evaluator_started and task is not None
    await dispatcher({"type": "http", "path": "/admin/"}, None, None)
    assert scheduler.running() is task  # once per process
    assert calls == ["/v1/chat/completions", "/admin/"]


async def test_lifespan_then_requests_start_one_task(settings, no_task):
    settings.ALERT_EVALUATION_SECONDS = 60
    scheduler.ensure_started()
    task = scheduler.running()
    dispatcher = HttpDispatcher(None, None)
    dispatcher.django = dispatcher.proxy = lambda scope, receive, send: asyncio.sleep(0)
    await dispatcher({"type": "http", "path": "/health"}, None, None)
    assert scheduler.running() is task


async def test_turned_off_it_does_not_start(settings, no_task):
    settings.ALERT_EVALUATION_SECONDS = 0
    scheduler.ensure_started()
    assert scheduler.running() is None


async def test_a_failing_run_is_logged_and_the_loop_goes_on(settings, no_task, monkeypatch, caplog):
    settings.ALERT_EVALUATION_SECONDS = 0.05
    runs = []

    def broken(min_interval=None):
        runs.append(min_interval)
        raise RuntimeError("database gone")

    monkeypatch.setattr(scheduler.evaluator, "run", broken)
    scheduler.ensure_started()
    await until(lambda: len(runs) >= 2)
    assert "Alert evaluation failed" in caplog.text
    assert not scheduler.running().done()


@pytest.mark.parametrize("seconds, errors", [(60.0, 0), (0.0, 0), (-5.0, 1), (float("inf"), 1), (float("nan"), 1)])
def test_the_interval_setting_is_checked_at_start(settings, seconds, errors):
    settings.ALERT_EVALUATION_SECONDS = seconds
    assert [e.id for e in check_evaluation_interval(None)] == ["alerts.E001"] * errors
