"""Checking a YAML config document as a whole: every error in it, never just
the first, each naming where it is (the provider, or the section) and the
offending value (CONTRACT section 6). A provider's fields are checked by the
Provider model fields' own rules. `validate_config` returns the normalised
config or the list of errors; providers.config loads and applies it.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import BooleanField, CharField, Field, FloatField, IntegerField, JSONField

from accounts.models import Tenant
from core.names import MODEL_NAME_RE, name_validator
from providers.models import Provider, mask_secret
from providers.runtime_config import ADVANCED_SECTIONS, STATE_SECTIONS

TOP_LEVEL = ("providers", "model_aliases", "prices", "overrides", *STATE_SECTIONS)

# Provider fields the file may set: the model's own field names (CONTRACT
# section 5), and `enabled` for `is_enabled`. Their rules are the model fields'
# (providers.models); a field the file leaves out is reset to the model default,
# as the file is the truth for the providers it lists.
PROVIDER_FIELDS = (
    "display_name", "base_url", "api_key", "api_key_env", "models", "is_enabled", "priority",
    "rate_limit_rpm", "rate_limit_tpm", "timeout", "max_retries", "custom_headers", "responses",
)  # fmt: skip
PROVIDER_FIELD_ALIASES = {"enabled": "is_enabled"}
SECRET_FIELDS = frozenset({"api_key", "custom_headers"})  # their values never appear in a message
MAX_PRICE = Decimal("999999")  # Price columns hold 12 digits, 6 after the point.
PRICE_PLACES = Decimal("0.000001")


class _Checker:
    """Collects errors as "path: message"; each check returns the value or None."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, "must be a mapping")
            return None
        return value

    def known_keys(self, value: dict, path: str, allowed: tuple[str, ...] | set[str]) -> None:
        for key in value:
            if key not in allowed:
                self.error(path, f"unknown field {str(key)!r} (expected one of: {', '.join(sorted(allowed))})")

    def string(self, value: Any, path: str, *, max_length: int = 100, allow_empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(path, "must be a string")
            return None
        if not value and not allow_empty:
            self.error(path, "must not be empty")
            return None
        if len(value) > max_length:
            self.error(path, f"must be at most {max_length} characters")
            return None
        return value

    def name(self, value: Any, path: str) -> str | None:
        value = self.string(value, path)
        if value is None:
            return None
        try:
            name_validator(value)
        except ValidationError:
            self.error(path, f"{value!r} is not a valid name ({name_validator.message})")
            return None
        return value

    def model_name(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not MODEL_NAME_RE.match(value):
            self.error(path, "must be a model name of 1-100 characters [A-Za-z0-9._:/-]")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, "must be true or false")
            return None
        return value

    def integer(self, value: Any, path: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        # bool is an int in Python; `true` is not a number in a config file.
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, "must be a whole number")
            return None
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            if maximum is None:
                self.error(path, f"must be at least {minimum}")
            else:
                self.error(path, f"must be between {minimum} and {maximum}")
            return None
        return value

    def positive_number(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value == float("inf"):
            self.error(path, "must be a number greater than 0")
            return None
        return float(value)

    def price(self, value: Any, path: str) -> Decimal | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(path, "must be a non-negative number")
            return None
        number = Decimal(str(value))
        if not number.is_finite() or number < 0:
            self.error(path, "must be a non-negative number")
            return None
        if number > MAX_PRICE:
            self.error(path, f"must be at most {MAX_PRICE} (USD per 1M tokens)")
            return None
        return number.quantize(PRICE_PLACES)


def _plain(value: Any) -> Any:
    """YAML values as JSON values (YAML has dates; JSONField has not)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _python_type_ok(field: Field, value: Any) -> bool:
    """YAML gives typed values: a number where the field wants a number, etc. (the
    model fields' own to_python would also take "5" for 5)."""
    if value is None:
        return field.null
    if isinstance(field, BooleanField):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return isinstance(field, JSONField)
    if isinstance(field, IntegerField):
        return isinstance(value, int)
    if isinstance(field, FloatField):
        return isinstance(value, int | float)
    if isinstance(field, CharField):
        return isinstance(value, str)
    return True


def _check_provider_field(check: _Checker, name: str, value: Any, path: str) -> Any:
    """A value for a Provider model field, checked against that field's rules."""
    field = Provider._meta.get_field(name)
    got = "" if name in SECRET_FIELDS else f" (got {_shown(value)})"
    if not _python_type_ok(field, value):
        check.error(path, f"must be {_KIND.get(field.get_internal_type(), 'a valid value')}{got}")
        return None
    if field.choices and value not in dict(field.choices):
        check.error(path, f"must be one of {', '.join(str(choice) for choice, _ in field.choices)}{got}")
        return None
    try:
        return field.clean(value, None)
    except ValidationError as exc:
        check.error(path, f"{' '.join(exc.messages).rstrip('.')}{got}")
        return None


_KIND = {
    "BooleanField": "true or false",
    "IntegerField": "a whole number",
    "PositiveIntegerField": "a whole number",
    "PositiveSmallIntegerField": "a whole number",
    "FloatField": "a number",
    "CharField": "a string",
}


def _named(path: str, raw: Any) -> str:
    """`providers[3] (openai-eu)`: each error names the provider, when it has a name."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{path} ({_shown(name)[1:-1]})" if isinstance(name, str) and name else path


def _check_provider(check: _Checker, raw: Any, path: str) -> dict | None:
    path = _named(path, raw)
    raw = check.mapping(raw, path)
    if raw is None:
        return None
    check.known_keys(raw, path, {"name", "type", *PROVIDER_FIELDS, *PROVIDER_FIELD_ALIASES})
    before = len(check.errors)
    out: dict[str, Any] = {}
    for required in ("name", "type"):
        if required not in raw:
            check.error(f"{path}.{required}", "is required")
    for key, value in raw.items():
        field = PROVIDER_FIELD_ALIASES.get(key, key)
        if field in out:
            check.error(f"{path}.{key}", f"repeats {field}")
        elif field in ("name", "type", *PROVIDER_FIELDS):
            out[field] = _check_provider_field(check, field, value, f"{path}.{key}")
    if out.get("api_key") and out.get("api_key_env"):
        check.error(path, "give api_key or api_key_env, not both")
    return out if len(check.errors) == before else None


def _check_providers(check: _Checker, raw: Any) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.error("providers", "must be a list")
        return []
    providers, seen = [], set()
    for i, item in enumerate(raw):
        provider = _check_provider(check, item, f"providers[{i}]")
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str):
            if name in seen:
                check.error(f"{_named(f'providers[{i}]', item)}.name", f"duplicate provider {name!r}")
            seen.add(name)
        if provider is not None:
            providers.append(provider)
    return providers


def _provider_ref(check: _Checker, value: Any, path: str, known: set[str]) -> str | None:
    if not isinstance(value, str) or not value:
        check.error(path, "must be a provider name")
        return None
    if value not in known:
        check.error(path, f"unknown provider {value!r}")
        return None
    return value


def _check_aliases(check: _Checker, raw: Any, known: set[str]) -> dict[str, list[dict]]:
    if raw is None:
        return {}
    if check.mapping(raw, "model_aliases") is None:
        return {}
    aliases = {}
    for alias, targets in raw.items():
        path = f"model_aliases.{alias}"
        alias = check.name(alias, path)
        if not isinstance(targets, list) or not targets:
            check.error(path, "must be a non-empty list of {provider, model}")
            continue
        out, seen = [], set()
        for i, target in enumerate(targets):
            where = f"{path}[{i}]"
            if check.mapping(target, where) is None:
                continue
            check.known_keys(target, where, ("provider", "model"))
            provider = _provider_ref(check, target.get("provider"), f"{where}.provider", known)
            model = check.model_name(target.get("model"), f"{where}.model")
            if provider and model:
                if (provider, model) in seen:
                    check.error(where, f"duplicate target {provider}/{model}")
                seen.add((provider, model))
                out.append({"provider": provider, "model": model})
        if alias:
            aliases[alias] = out
    return aliases


def _check_prices(check: _Checker, raw: Any) -> dict[str, dict]:
    if raw is None or check.mapping(raw, "prices") is None:
        return {}
    prices = {}
    for model, entry in raw.items():
        path = f"prices.{model}"
        model = check.model_name(model, path)
        if check.mapping(entry, path) is None:
            continue
        check.known_keys(entry, path, ("input", "output", "cached_input"))
        price = {}
        for field in ("input", "output", "cached_input"):
            if field not in entry:
                if field != "cached_input":
                    check.error(f"{path}.{field}", "is required")
                continue
            price[field] = check.price(entry[field], f"{path}.{field}")
        if model:
            prices[model] = price
    return prices


def _check_overrides(check: _Checker, raw: Any, known: set[str]) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.error("overrides", "must be a list")
        return []
    overrides, seen = [], set()
    for i, item in enumerate(raw):
        path = f"overrides[{i}]"
        if check.mapping(item, path) is None:
            continue
        check.known_keys(item, path, ("tenant", "user_id", "service", "provider", "model"))
        tenant = item.get("tenant")
        if tenant is not None and not Tenant.objects.filter(name=tenant).exists():
            check.error(f"{path}.tenant", f"unknown tenant {_shown(tenant)}")
        user_id = item.get("user_id")
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)
        user_id = check.string(user_id, f"{path}.user_id")
        service = item.get("service")
        service = None if service is None else check.string(service, f"{path}.service")
        provider = _provider_ref(check, item.get("provider"), f"{path}.provider", known)
        model = check.model_name(item.get("model"), f"{path}.model")
        if user_id is not None:
            if (tenant, user_id, service) in seen:
                check.error(path, f"duplicate override for user {user_id!r}, service {service!r}")
            seen.add((tenant, user_id, service))
        overrides.append(
            {"tenant": tenant, "user_id": user_id, "service": service, "provider": provider, "model": model}
        )
    return overrides


# section -> field -> check; every field optional, unknown fields are errors.
def _section_fields(check: _Checker) -> dict[str, dict[str, Any]]:
    def positive_int(value, path):
        return check.integer(value, path, minimum=1)

    def optional_positive_int(value, path):
        return None if value is None else positive_int(value, path)

    return {
        "limits": {
            "max_concurrent_requests": positive_int,
            "default_key_rpm": optional_positive_int,
            "default_key_tpm": optional_positive_int,
            "default_max_tokens": positive_int,
            "max_request_bytes": positive_int,
        },
        "cache": {
            "enabled": check.boolean,
            "ttl": lambda value, path: check.integer(value, path, minimum=0),
            "max_entries": positive_int,
        },
        "circuit_breaker": {
            "failure_threshold": positive_int,
            "recovery_timeout": check.positive_number,
            "half_open_max_calls": positive_int,
        },
    }


def _check_section(check: _Checker, name: str, raw: Any, fields: dict[str, Any]) -> dict:
    if raw is None or check.mapping(raw, name) is None:
        return {}
    check.known_keys(raw, name, tuple(fields))
    return {key: fields[key](value, f"{name}.{key}") for key, value in raw.items() if key in fields}


def _check_advanced(check: _Checker, name: str, raw: Any) -> dict:
    # Their fields belong to the features that read them; here only the shape.
    if raw is None or check.mapping(raw, name) is None:
        return {}
    if "enabled" in raw:
        check.boolean(raw["enabled"], f"{name}.enabled")
    return _plain(raw)


def validate_config(document: Any) -> tuple[dict | None, list[str]]:
    """Check a parsed document as a whole: (normalised config, []) or (None, every error)."""
    check = _Checker()
    if not isinstance(document, dict):
        return None, ["config: must be a mapping of sections (providers, model_aliases, prices, ...)"]
    for key in document:
        if key not in TOP_LEVEL:
            check.error(str(key), f"unknown section (expected one of: {', '.join(TOP_LEVEL)})")

    providers = _check_providers(check, document.get("providers"))
    listed = document.get("providers") if isinstance(document.get("providers"), list) else []
    in_file = {item.get("name") for item in listed if isinstance(item, dict) and isinstance(item.get("name"), str)}
    known = in_file | set(Provider.objects.values_list("name", flat=True))
    config: dict[str, Any] = {
        "providers": providers,
        "model_aliases": _check_aliases(check, document.get("model_aliases"), known),
        "prices": _check_prices(check, document.get("prices")),
        "overrides": _check_overrides(check, document.get("overrides"), known),
    }
    for name, fields in _section_fields(check).items():
        config[name] = _check_section(check, name, document.get(name), fields)
    default_model = document.get("default_model")
    config["default_model"] = None if default_model is None else check.model_name(default_model, "default_model")
    for name in ADVANCED_SECTIONS:
        config[name] = _check_advanced(check, name, document.get(name))

    if check.errors:
        return None, _without_secrets(check.errors, document)
    return config, []


def _without_secrets(errors: list[str], document: dict) -> list[str]:
    """Belt and braces: no provider key may reach a message, wherever it was pasted."""
    providers = document.get("providers") if isinstance(document.get("providers"), list) else []
    secrets = [
        item["api_key"]
        for item in providers
        if isinstance(item, dict) and isinstance(item.get("api_key"), str) and len(item["api_key"]) >= 8
    ]
    for secret in sorted(secrets, key=len, reverse=True):
        errors = [error.replace(secret, mask_secret(secret)) for error in errors]
    return errors
