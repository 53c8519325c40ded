"""Usage records for tests: built unsaved, saved together with bulk_create."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count

from django.utils import timezone

from usage.models import UsageRecord

_ids = count(1)


def make_record(*, ago: timedelta, key=None, **fields) -> UsageRecord:
    """An unsaved record `ago` before now, charged to `key`'s tenant, user and key."""
    if key is not None:
        fields.update(tenant_id=key.tenant_id, user_id=key.user_id, key_id=key.pk)
    fields.setdefault("endpoint", "chat")
    fields.setdefault("status", 200)
    if "cost_usd" in fields:
        fields["cost_usd"] = Decimal(fields["cost_usd"])
    return UsageRecord(created_at=timezone.now() - ago, request_id=f"req-{next(_ids)}", **fields)


@dataclass
class Usage:
    records: list[UsageRecord]

    def at(self, index: int) -> datetime:
        return self.records[index].created_at
