"""In-process snapshot of routing data (providers, aliases, overrides, prices,
config), so the /v1 path reads no database on a warm request.

Changes set a new generation token (in Redis when configured, else in the
database), shared by every process; each process checks it at most once per
settings.ROUTING_REFRESH_SECONDS and rebuilds its snapshot when it moved. A change made in this
process is seen at once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from core import local_caches, shared_redis
from core.errors import GatewayError
from providers.models import ModelAlias, Override, Price, Provider, RoutingGeneration
from providers.runtime_config import runtime_settings

GENERATION_KEY = "gw:routing:generation"


@dataclass(frozen=True, slots=True)
class Upstream:
    """A provider as the router sees it (plain data, key resolved)."""

    id: int
    name: str
    type: str
    base_url: str
    api_key: str
    priority: int
    timeout: float
    max_retries: int
    custom_headers: dict
    rate_limit_rpm: int | None
    rate_limit_tpm: int | None
    enabled: bool
    models: tuple[str, ...]
    created: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    upstream: Upstream
    model: str  # the model name sent upstream


@dataclass
class Snapshot:
    generation: int
    upstreams: dict[str, Upstream]
    listed: dict[str, list[Upstream]]  # model -> every provider listing it, best first
    aliases: dict[str, list[Target]]
    overrides: dict[tuple[int | None, str, str | None], Target]  # (tenant or None, user, service or None)
    prices: dict[str, dict]
    settings: dict = field(default_factory=dict)

    def candidates(self, model: str) -> list[Target]:
        """Enabled targets for a public model name, in the order to try them."""
        if model in self.aliases:
            return [t for t in self.aliases[model] if t.upstream.enabled]
        return [Target(u, model) for u in self.listed.get(model, ()) if u.enabled]

    def is_known(self, model: str) -> bool:
        """Served by some provider, enabled or not (503 rather than 404 when all are off)."""
        return model in self.aliases or model in self.listed

    def override(self, user_id: str | None, service: str | None, tenant_id: int | None) -> Target | None:
        """The override for a user of a tenant: the tenant's own before a global
        one, each for the service before one for all services."""
        if not user_id or not self.overrides:
            return None
        get = self.overrides.get
        return (
            get((tenant_id, user_id, service))
            or get((tenant_id, user_id, None))
            or get((None, user_id, service))
            or get((None, user_id, None))
        )

    def model_names(self) -> list[str]:
        return sorted(set(self.listed) | set(self.aliases))

    def route(self, model: str, users: tuple[str | None, ...] = (), tenant_id: int | None = None) -> list[Target]:
        """The targets a request for `model` tries, in order. An override for the
        first of `users` (of `tenant_id`) that has one, for all services, wins;
        else every enabled provider serving the model, best first. A model no
        provider serves is a 404; one whose providers are all disabled a 503."""
        for user in users:
            override = self.override(user, None, tenant_id)
            if override is not None:
                return [override]
        candidates = self.candidates(model)
        if candidates:
            return candidates
        if self.is_known(model):
            raise GatewayError("provider_unavailable", f"Every provider for '{model}' is disabled.")
        raise GatewayError("model_not_found", f"The model '{model}' does not exist.", param="model")

    def default_model(self) -> str | None:
        """The config's `default_model`, else the first model of the first enabled provider."""
        if self.settings.get("default_model"):
            return self.settings["default_model"]
        for upstream in self.upstreams.values():
            if upstream.enabled and upstream.models:
                return upstream.models[0]
        return None


def upstream_from(provider) -> Upstream:
    return Upstream(
        id=provider.pk,
        name=provider.name,
        type=provider.type,
        base_url=provider.resolved_base_url(),
        api_key=provider.resolved_api_key(),
        priority=provider.priority,
        timeout=provider.timeout,
        max_retries=provider.max_retries,
        custom_headers=dict(provider.custom_headers or {}),
        rate_limit_rpm=provider.rate_limit_rpm,
        rate_limit_tpm=provider.rate_limit_tpm,
        enabled=provider.is_enabled,
        models=tuple(provider.models or ()),
        created=int(provider.created_at.timestamp()),
    )


def build(generation: int) -> Snapshot:
    upstreams = {p.name: upstream_from(p) for p in Provider.objects.order_by("-priority", "name")}
    listed: dict[str, list[Upstream]] = {}
    for upstream in upstreams.values():
        for model in upstream.models:
            listed.setdefault(model, []).append(upstream)
    aliases: dict[str, list[Target]] = {}
    for alias in ModelAlias.objects.select_related("provider").order_by("name", "position", "pk"):
        aliases.setdefault(alias.name, []).append(Target(upstreams[alias.provider.name], alias.model))
    overrides = {
        (o.tenant_id, o.user_id, o.service_name or None): Target(upstreams[o.provider.name], o.model)
        for o in Override.objects.select_related("provider")
    }
    prices = {
        p.model: {
            "input": float(p.input),
            "output": float(p.output),
            "cached_input": float(p.cached_input) if p.cached_input is not None else None,
        }
        for p in Price.objects.all()
    }
    return Snapshot(generation, upstreams, listed, aliases, overrides, prices, runtime_settings())


class _State:
    snapshot: Snapshot | None = None
    checked_at = 0.0
    stale = True


_state = _State()


def _db_generation() -> int:
    return RoutingGeneration.objects.filter(pk=1).values_list("value", flat=True).first() or 0


def _new_generation() -> int:
    # Random, not a counter: a counter restarts after a Redis flush or a
    # database reset and could come back to a value a process already holds.
    return secrets.randbits(62)


def _bump_db_generation() -> None:
    RoutingGeneration.objects.update_or_create(pk=1, defaults={"value": _new_generation()})


async def _generation() -> int:
    redis = shared_redis.async_redis()
    if redis is None:
        return await database_sync_to_async(_db_generation)()
    value = await redis.get(GENERATION_KEY)
    return int(value or 0)


async def current() -> Snapshot:
    snapshot = _state.snapshot
    now = time.monotonic()
    if snapshot is not None and not _state.stale and now - _state.checked_at < settings.ROUTING_REFRESH_SECONDS:
        return snapshot
    generation = await _generation()
    if snapshot is None or _state.stale or generation != snapshot.generation:
        # Cleared before building: an invalidation during the build marks it stale again.
        _state.stale = False
        snapshot = await database_sync_to_async(build)(generation)
        _state.snapshot = snapshot
    _state.checked_at = now
    return snapshot


def current_sync() -> Snapshot:
    """For management views and commands (fresh read, not cached)."""
    redis = shared_redis.sync_redis()
    generation = int(redis.get(GENERATION_KEY) or 0) if redis is not None else _db_generation()
    return build(generation)


def invalidate() -> None:
    """Call after changing providers, aliases, overrides, prices or config
    (signals do it for model saves; bulk updates must call it themselves)."""
    _state.stale = True
    redis = shared_redis.sync_redis()
    if redis is not None:
        redis.set(GENERATION_KEY, _new_generation())
    else:
        _bump_db_generation()


def reset_local() -> None:
    """Forget this process's snapshot (tests, after resetting the database under it)."""
    _state.snapshot = None
    _state.stale = True


local_caches.register(reset_local)
