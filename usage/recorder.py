"""Writing usage records.

For now one INSERT per call, done after the response is complete (the client
never waits for it). Batching through a buffer comes with the quota work.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from usage.models import UsageRecord

logger = logging.getLogger("gateway.usage")


def _write(fields: dict) -> None:
    UsageRecord.objects.create(**fields)


async def record(fields: dict) -> None:
    try:
        await database_sync_to_async(_write)(fields)
    except Exception:
        # Accounting must never turn a served request into an error.
        logger.exception("Could not write usage record %s", fields.get("request_id"))
