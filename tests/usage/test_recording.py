"""Usage records: written off the request path, and none lost when the
server is stopped with SIGTERM in the middle of a load."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from decimal import Decimal

import httpx

from tests.live import DaphneGateway, flush_usage
from usage.models import UsageRecord

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def test_sigterm_during_load_loses_no_usage_record(proxy_world, upstream):
    server = DaphneGateway()
    completed: list[str] = []
    stop = threading.Event()

    async def load() -> None:
        headers = {"Authorization": f"Bearer {proxy_world.member_raw}"}
        async with httpx.AsyncClient(timeout=10) as client:

            async def worker() -> None:
                for _ in range(100):  # bounded; ends at the first refused connection anyway
                    if stop.is_set():
                        return
                    try:
                        response = await client.post(server.v1 + "/chat/completions", json=CHAT, headers=headers)
                    except httpx.HTTPError:
                        return  # the server went away mid-request: no promise for that one
                    if response.status_code == 200:
                        completed.append(response.json()["_proxy_info"]["request_id"])

            await asyncio.gather(*(worker() for _ in range(8)))

    loader = threading.Thread(target=lambda: asyncio.run(load()))
    loader.start()
    deadline = time.monotonic() + 10
    while len(completed) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGTERM)
    exit_code = server.process.wait(timeout=20)
    stop.set()
    loader.join(timeout=20)
    assert exit_code == 0
    assert len(completed) >= 30

    flush_usage()  # with Redis the queue outlives the process; without, Daphne flushed at exit
    recorded = set(UsageRecord.objects.filter(key_id=proxy_world.member_key.pk).values_list("request_id", flat=True))
    missing = set(completed) - recorded
    assert not missing, f"{len(missing)} of {len(completed)} answered requests have no usage record"


def test_records_are_written_once_even_if_a_batch_is_written_twice(transactional_db):
    from django.utils import timezone

    from usage import recorder

    fields = {
        "created_at": timezone.now(), "request_id": "req_dup", "endpoint": "chat", "status": 200,
        "tenant_id": 1, "user_id": 1, "key_id": 1, "cost_usd": Decimal("0.001"),
    }  # fmt: skip
    recorder.write([fields])
    recorder.write([recorder.decode(recorder.encode(fields))])
    assert UsageRecord.objects.filter(request_id="req_dup").count() == 1
