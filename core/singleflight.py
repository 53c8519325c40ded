"""Concurrent callers asking for the same thing share one run of it.

For lookups that are cheap once cached but costly to fill (a key's record,
a quota counter rebuilt from the usage table): a burst of requests that all
miss at once (a cold start, Redis restarted) makes one database query, not one
each. The run is a task of its own, so a caller that is cancelled (its client
left) does not cancel it for the others. Per event loop, as tasks are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial


class SingleFlight:
    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task] = {}

    async def run(self, key: Hashable, start: Callable[[], Awaitable]):
        """The result of `start()` for `key`, shared with callers already waiting on it."""
        loop = asyncio.get_running_loop()
        task = self._tasks.get(key)
        if task is None or task.get_loop() is not loop:
            task = self._tasks[key] = loop.create_task(start())
            task.add_done_callback(partial(self._done, key))
        return await asyncio.shield(task)

    def _done(self, key: Hashable, task: asyncio.Task) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: callers that stayed got it; no "never retrieved" warning
