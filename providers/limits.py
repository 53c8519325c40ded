"""A provider's own RPM and TPM (`rate_limit_rpm`, `rate_limit_tpm`): a
provider at its limit is skipped by the router. Counted with the same engine
as the quotas (`core.counters`), shared by every process with Redis; the
tokens a call used are added to the TPM window when it settles."""

from __future__ import annotations

import time

from core import counters
from core.counters import Check
from providers.registry import Upstream

WINDOW = 60  # seconds in a rate-limit window


def provider_checks(upstream: Upstream) -> list[Check]:
    """A provider's own RPM/TPM (tokens are added when the call settles)."""
    minute = int(time.time()) // WINDOW
    checks = []
    if upstream.rate_limit_rpm:
        checks.append(
            Check(f"gw:r:provider:{upstream.id}:{minute}", "rpm", "provider", upstream.rate_limit_rpm, 1, WINDOW * 2)
        )
    if upstream.rate_limit_tpm:
        checks.append(
            Check(f"gw:k:provider:{upstream.id}:{minute}", "tpm", "provider", upstream.rate_limit_tpm, 0, WINDOW * 2)
        )
    return checks


async def try_provider(upstream: Upstream) -> list[Check] | None:
    """Take a slot in the provider's own limits; None when it is at its limit now."""
    checks = provider_checks(upstream)
    status, _, _ = await counters.reserve(checks)
    return checks if status == 1 else None
