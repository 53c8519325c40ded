"""The YAML config file: load it, validate it as a whole, apply it in one transaction.

A config is all or nothing: `load_config` collects every error in the document
(providers.config_validation, never just the first), and `apply_config` only
ever sees a document that passed. So a bad file leaves the running config
exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction

from accounts.models import Tenant
from providers import registry
from providers.config_validation import PROVIDER_FIELDS, validate_config
from providers.models import ConfigState, ModelAlias, Override, Price, Provider
from providers.runtime_config import ADVANCED_SECTIONS, STATE_PK, STATE_SECTIONS, runtime_settings


def load_config(path: str | Path) -> tuple[dict | None, list[str]]:
    """Read and validate a YAML config file: (config, []) or (None, every error found)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{path}: file not found"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot read: {type(exc).__name__}"]
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The problem and its position only: YAML's own message quotes the line,
        # and that line may hold a key.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        return None, [f"{path}: not valid YAML: {problem}{where}"]
    if document is None:
        return None, [f"{path}: is empty; expected a mapping of sections"]
    return validate_config(document)


# --------------------------------------------------------------------------- applying


def _provider_fields(item: dict) -> dict:
    fields = {"type": item["type"], "from_config": True}
    for name in PROVIDER_FIELDS:
        fields[name] = item[name] if name in item else Provider._meta.get_field(name).get_default()
    return fields


def apply_config(data: dict, source: str) -> dict:
    """Make the database match a validated config, in one transaction.

    Providers the file no longer lists are disabled, not deleted: usage
    history points at them.
    """
    with transaction.atomic():
        names = [item["name"] for item in data["providers"]]
        for item in data["providers"]:
            Provider.objects.update_or_create(name=item["name"], defaults=_provider_fields(item))
        Provider.objects.filter(from_config=True).exclude(name__in=names).update(is_enabled=False)

        by_name = Provider.objects.in_bulk(field_name="name")
        ModelAlias.objects.all().delete()
        ModelAlias.objects.bulk_create(
            ModelAlias(name=alias, provider=by_name[target["provider"]], model=target["model"], position=position)
            for alias, targets in data["model_aliases"].items()
            for position, target in enumerate(targets)
        )
        for model, price in data["prices"].items():
            defaults = {"input": price["input"], "output": price["output"], "cached_input": price.get("cached_input")}
            Price.objects.update_or_create(model=model, defaults=defaults)
        tenants = Tenant.objects.in_bulk([o["tenant"] for o in data["overrides"] if o["tenant"]], field_name="name")
        for override in data["overrides"]:
            Override.objects.update_or_create(
                tenant=tenants.get(override["tenant"]),
                user_id=override["user_id"],
                service_name=override["service"],
                defaults={"provider": by_name[override["provider"]], "model": override["model"]},
            )
        ConfigState.objects.update_or_create(
            pk=STATE_PK,
            defaults={"source": str(source)[:500], "data": {name: data.get(name) for name in STATE_SECTIONS}},
        )
    # Bulk updates send no signals; one bump covers the whole config.
    registry.invalidate()
    return {
        "providers": len(names),
        "aliases": len(data["model_aliases"]),
        "prices": len(data["prices"]),
        "overrides": len(data["overrides"]),
    }


def reload(path: str | Path | None = None) -> tuple[bool, dict | list[str]]:
    """Load and apply a config file (settings.GATEWAY_CONFIG by default):
    (True, summary) or (False, errors) with nothing changed."""
    path = path or settings.GATEWAY_CONFIG
    data, errors = load_config(path)
    if errors:
        return False, errors
    return True, apply_config(data, source=str(path))


# --------------------------------------------------------------------------- reading


def config_status() -> dict:
    state = ConfigState.objects.filter(pk=STATE_PK).first()
    current = runtime_settings()
    providers = list(Provider.objects.values_list("is_enabled", "models"))
    aliases = sorted(set(ModelAlias.objects.values_list("name", flat=True)))
    served = {model for enabled, models in providers if enabled for model in models or []}
    return {
        "loaded": state is not None,
        "source": state.source if state else None,
        "loaded_at": state.loaded_at.isoformat() if state else None,
        "providers": {"total": len(providers), "enabled": sum(1 for enabled, _ in providers if enabled)},
        "models": sorted(served | set(aliases)),
        "aliases": aliases,
        "default_model": current["default_model"],
        "sections": {
            "limits": current["limits"],
            "cache": current["cache"],
            "circuit_breaker": current["circuit_breaker"],
            **{name: {"enabled": bool(current[name].get("enabled", False))} for name in ADVANCED_SECTIONS},
        },
    }
