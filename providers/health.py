"""Each provider's state as operators see it: enabled, circuit breaker, models.

Read from the database and the shared circuit state (not this process's
routing snapshot), for the health endpoints, the admin dashboard and alert
rules; never on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers.circuit import circuits
from providers.models import Provider

CIRCUIT_STATES = {0: "closed", 1: "half_open", 2: "open"}


@dataclass
class ProviderState:
    name: str
    type: str
    enabled: bool
    circuit: str  # closed | half_open | open
    models: int

    @property
    def status(self) -> str:
        """healthy | degraded | unhealthy | disabled (from its own state, before traffic figures)."""
        if not self.enabled:
            return "disabled"
        return {"closed": "healthy", "half_open": "degraded", "open": "unhealthy"}[self.circuit]


def provider_states() -> list[ProviderState]:
    return [
        ProviderState(
            name=provider.name,
            type=provider.type,
            enabled=provider.is_enabled,
            circuit=CIRCUIT_STATES[circuits.state_code_sync(provider.name)],
            models=len(provider.models or []),
        )
        for provider in Provider.objects.order_by("-priority", "name")
    ]
