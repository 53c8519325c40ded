"""The alert evaluator inside the server: one background asyncio task per
process, evaluating every ALERT_EVALUATION_SECONDS (0: off; cron can run
`manage.py evaluate_alerts` instead).

It starts at ASGI lifespan startup when the server sends lifespan (uvicorn
does unless told `--lifespan off`), and otherwise with the first HTTP request
(Daphne sends no lifespan, nor uvicorn with `--lifespan off` as scripts/serve.sh
runs it): gateway.asgi calls `ensure_started()` on its first request; after
that, a request costs one attribute test.

Each turn runs `evaluator.run()` in a thread of its own (one worker, whose
database connection is closed after each run), not in asgiref's shared thread
for sync code: a slow read of the usage table must not queue the request
path's database work behind it. Evaluation is skipped when another process has just done it, so N
workers still evaluate about once per interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from alerts import evaluator

logger = logging.getLogger("gateway.alerts")

IDLE_SECONDS = 5.0  # how often a task finds the evaluator turned off (tests turn it off and on)

_task: asyncio.Task | None = None
_thread: ThreadPoolExecutor | None = None


def interval() -> float | None:
    """Seconds between evaluations; None when off."""
    seconds = settings.ALERT_EVALUATION_SECONDS
    return seconds if 0 < seconds < math.inf else None


def running() -> asyncio.Task | None:
    return _task if _task is not None and not _task.done() else None


def ensure_started() -> None:
    """Start this process's evaluator task on the running loop, unless it runs
    there already or evaluation is off. Servers run one event loop per
    process; the test suite starts several, so a task of another loop is
    replaced."""
    global _task
    loop = asyncio.get_running_loop()
    task = running()
    if (task is None or task.get_loop() is not loop) and interval() is not None:
        _task = loop.create_task(_run(), name="alert-evaluator")


async def stop() -> None:
    """Cancel the task (lifespan shutdown). A run already in its thread
    finishes there; the lock it holds is released by it."""
    global _task
    task, _task = running(), None
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def lifespan(scope, receive, send) -> None:
    """The ASGI lifespan protocol: start the evaluator at startup, stop it at shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            ensure_started()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _evaluate(min_interval: float) -> evaluator.Outcome | None:
    try:
        return evaluator.run(min_interval=min_interval)
    finally:
        # A connection a minute costs nothing; one held between runs would
        # count against the database's limit for nothing (and keep a test
        # database from being dropped).
        connections.close_all()


def _executor() -> ThreadPoolExecutor:
    global _thread
    if _thread is None:
        _thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alert-evaluator")
    return _thread


async def _run() -> None:
    while True:
        await asyncio.sleep(interval() or IDLE_SECONDS)
        seconds = interval()  # read again: the setting may have changed meanwhile
        if seconds is None:
            continue
        try:
            evaluate = database_sync_to_async(_evaluate, thread_sensitive=False, executor=_executor())
            outcome = await evaluate(seconds)
        except Exception:
            logger.exception("Alert evaluation failed; trying again in %g s", seconds)
            continue
        if outcome is not None and (outcome.fired or outcome.resolved):
            logger.info("Alerts: %s", outcome)
