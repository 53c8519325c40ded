from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Tenant
from providers import registry
from providers.config import apply_config, config_status, load_config, reload
from providers.config_validation import validate_config
from providers.models import ConfigState, ModelAlias, Override, Price, Provider
from providers.runtime_config import DEFAULTS, runtime_settings

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdefSECRET"

VALID = f"""
providers:
  - name: openai
    type: openai
    base_url: https://api.openai.com/v1
    api_key: {SECRET}
    models: [gpt-4o-mini, gpt-4o]
    priority: 10
    timeout: 30
    max_retries: 2
    rate_limit_rpm: 600
    custom_headers: {{X-Team: gateway}}
  - name: local
    type: ollama
    base_url: http://127.0.0.1:11434/v1
    api_key_env: LOCAL_KEY
    models: ["llama3:8b", "org/model-1"]
    enabled: false
model_aliases:
  fast:
    - {{provider: openai, model: gpt-4o-mini}}
    - {{provider: local, model: "llama3:8b"}}
prices:
  gpt-4o-mini: {{input: 0.15, output: 0.60, cached_input: 0.075}}
  gpt-4o: {{input: 2.5, output: 10}}
limits:
  max_concurrent_requests: 50
  default_key_rpm: 600
cache:
  enabled: false
  ttl: 60
circuit_breaker: {{failure_threshold: 3, recovery_timeout: 30, half_open_max_calls: 1}}
overrides:
  - {{user_id: alice, service: billing, provider: openai, model: gpt-4o}}
  - {{user_id: bob, service: null, provider: local, model: "llama3:8b"}}
default_model: gpt-4o-mini
telemetry: {{enabled: true, endpoint: "http://collector:4318"}}
guardrails: {{blocked_words: [foo]}}
"""

INVALID = f"""
providers:
  - name: openai
    type: openai
    api_key: {SECRET}
    timeout: 0
    max_retries: 11
  - name: broken
    type: azure
    base_url: ftp://example.com
    models: ["bad model"]
  - name: openai
    type: echo
  - type: echo
model_aliases:
  fast: [{{provider: nowhere, model: gpt-4o}}]
  empty: []
prices:
  gpt-4o: {{input: -1, output: cheap}}
cache: {{enabled: maybe, ttl: -5}}
circuit_breaker: {{failure_threshold: 0}}
limits: {{max_concurrent_requests: 0, surprise: 1}}
overrides:
  - {{user_id: alice, provider: ghost, model: gpt-4o}}
telemetry: [not, a, mapping]
frobnicate: true
"""


def write(tmp_path, text: str, name: str = "gateway.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def snapshot() -> dict:
    return {
        "providers": list(Provider.objects.order_by("name").values()),
        "aliases": list(ModelAlias.objects.values("name", "provider__name", "model", "position")),
        "prices": list(Price.objects.values()),
        "overrides": list(Override.objects.values("user_id", "service_name", "provider__name", "model")),
        "state": list(ConfigState.objects.values()),
    }


def test_valid_file_applies_providers_aliases_prices_overrides_and_state(tmp_path):
    path = write(tmp_path, VALID)
    ok, summary = reload(path)
    assert ok, summary
    assert summary == {"providers": 2, "aliases": 1, "prices": 2, "overrides": 2}

    openai = Provider.objects.get(name="openai")
    assert (openai.type, openai.api_key, openai.models, openai.priority) == (
        "openai",
        SECRET,
        ["gpt-4o-mini", "gpt-4o"],
        10,
    )
    assert (openai.timeout, openai.max_retries, openai.rate_limit_rpm) == (30.0, 2, 600)
    assert openai.custom_headers == {"X-Team": "gateway"} and openai.is_enabled and openai.from_config
    local = Provider.objects.get(name="local")
    assert (local.api_key_env, local.is_enabled, local.timeout) == ("LOCAL_KEY", False, 60.0)

    aliases = list(ModelAlias.objects.values_list("name", "provider__name", "model", "position"))
    assert aliases == [("fast", "openai", "gpt-4o-mini", 0), ("fast", "local", "llama3:8b", 1)]
    mini = Price.objects.get(model="gpt-4o-mini")
    assert (mini.input, mini.output, mini.cached_input) == (Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))
    assert Price.objects.get(model="gpt-4o").cached_input is None
    assert Override.objects.get(user_id="alice", service_name="billing").provider == openai
    assert Override.objects.get(user_id="bob", service_name__isnull=True).model == "llama3:8b"

    state = ConfigState.objects.get(pk=1)
    assert state.source == str(path)
    assert state.data["limits"] == {"max_concurrent_requests": 50, "default_key_rpm": 600}
    assert state.data["telemetry"] == {"enabled": True, "endpoint": "http://collector:4318"}


def test_runtime_settings_merges_the_file_over_defaults(tmp_path, settings):
    reload(write(tmp_path, VALID))
    current = runtime_settings()
    assert current["limits"] == {
        "max_concurrent_requests": 50,
        "default_key_rpm": 600,
        "default_key_tpm": None,
        "default_max_tokens": 1024,
        "max_request_bytes": settings.MAX_REQUEST_BYTES,
    }
    assert current["cache"] == {"enabled": False, "ttl": 60, "max_entries": 10000}
    assert current["circuit_breaker"] == {"failure_threshold": 3, "recovery_timeout": 30.0, "half_open_max_calls": 1}
    assert current["default_model"] == "gpt-4o-mini"
    assert current["telemetry"]["enabled"] is True
    assert current["guardrails"] == {"enabled": False, "blocked_words": ["foo"]}
    assert current["condensation"] == {"enabled": False}


def test_runtime_settings_without_a_config_are_the_defaults(db):
    current = runtime_settings()
    assert current["cache"] == DEFAULTS["cache"] == {"enabled": False, "ttl": 3600, "max_entries": 10000}
    assert current["circuit_breaker"] == {"failure_threshold": 5, "recovery_timeout": 60, "half_open_max_calls": 3}
    assert current["limits"]["max_concurrent_requests"] == 500 and current["limits"]["default_key_rpm"] == 600


def test_invalid_file_lists_every_error_and_changes_nothing(tmp_path):
    reload(write(tmp_path, VALID, "good.yaml"))
    before = snapshot()

    ok, errors = reload(write(tmp_path, INVALID))

    assert not ok
    assert snapshot() == before
    expected = [
        "providers[0] (openai).timeout: Enter a number of seconds greater than 0 (got 0)",
        "providers[0] (openai).max_retries: Ensure this value is less than or equal to 10 (got 11)",
        "providers[1] (broken).type: must be one of openai, openai_compatible, anthropic",
        "providers[1] (broken).base_url: Enter an http:// or https:// URL (got 'ftp://example.com')",
        "providers[1] (broken).models: Item 0 is not a model name",
        "providers[2] (openai).name: duplicate provider 'openai'",
        "providers[3].name: is required",
        "model_aliases.fast[0].provider: unknown provider 'nowhere'",
        "model_aliases.empty: must be a non-empty list",
        "prices.gpt-4o.input: must be a non-negative number",
        "prices.gpt-4o.output: must be a non-negative number",
        "cache.enabled: must be true or false",
        "cache.ttl: must be at least 0",
        "circuit_breaker.failure_threshold: must be at least 1",
        "limits.max_concurrent_requests: must be at least 1",
        "limits: unknown field 'surprise'",
        "overrides[0].provider: unknown provider 'ghost'",
        "telemetry: must be a mapping",
        "frobnicate: unknown section",
    ]
    for start in expected:
        assert any(error.startswith(start) for error in errors), (start, errors)
    assert len(errors) == len(expected), errors
    assert not any(SECRET in error for error in errors)


def test_provider_removed_from_the_file_is_disabled_not_deleted(tmp_path):
    manual = Provider.objects.create(name="manual", type="echo", models=["echo"])
    reload(write(tmp_path, VALID))
    only_local = VALID.replace("  - name: openai", "  - name: gone", 1)
    only_local = only_local.replace("provider: openai", "provider: gone")
    ok, _ = reload(write(tmp_path, only_local))
    assert ok
    openai = Provider.objects.get(name="openai")
    assert not openai.is_enabled and openai.from_config
    assert Provider.objects.get(name="gone").is_enabled
    manual.refresh_from_db()
    assert manual.is_enabled and not manual.from_config


def test_aliases_are_replaced_not_merged(tmp_path):
    reload(write(tmp_path, VALID))
    reload(write(tmp_path, VALID.replace("  fast:\n", "  quick:\n")))
    assert set(ModelAlias.objects.values_list("name", flat=True)) == {"quick"}


def test_alias_and_override_may_name_a_provider_already_in_the_database(tmp_path):
    Provider.objects.create(name="manual", type="echo", models=["echo"])
    text = (
        "model_aliases:\n  e: [{provider: manual, model: echo}]\n"
        "overrides:\n  - {user_id: 7, provider: manual, model: echo}\n"
    )
    ok, summary = reload(write(tmp_path, text))
    assert ok, summary
    assert ModelAlias.objects.get(name="e").provider.name == "manual"
    assert Override.objects.get(user_id="7").service_name is None


def test_apply_invalidates_the_routing_snapshot_and_a_rejected_file_does_not(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(registry, "invalidate", lambda: calls.append(1))
    reload(write(tmp_path, INVALID))
    assert calls == []
    reload(write(tmp_path, VALID))
    assert calls


@pytest.mark.parametrize(
    "text,message",
    [
        ("providers: [\n  - name: x\n", "not valid YAML"),
        ("- just\n- a list\n", "config: must be a mapping"),
        ("", "is empty"),
    ],
)
def test_unreadable_documents_are_errors(tmp_path, text, message):
    data, errors = load_config(write(tmp_path, text))
    assert data is None
    assert len(errors) == 1 and message in errors[0]


def test_missing_file_is_an_error(tmp_path):
    data, errors = load_config(tmp_path / "nope.yaml")
    assert data is None and errors == [f"{tmp_path / 'nope.yaml'}: file not found"]


def test_yaml_syntax_error_does_not_quote_the_key(tmp_path):
    text = f"providers:\n  - name: x\n    api_key: {SECRET}: oops\n"
    _, errors = load_config(write(tmp_path, text))
    assert errors and "line 3" in errors[0]
    assert SECRET not in errors[0]


def test_key_pasted_into_the_wrong_field_is_masked_in_errors(db):
    document = {"providers": [{"name": "p", "type": "openai", "api_key": SECRET, "models": [SECRET + " x"]}]}
    _, errors = validate_config(document)
    assert errors and not any(SECRET in error for error in errors)


def test_key_and_key_env_together_are_refused(db):
    document = {"providers": [{"name": "p", "type": "openai", "api_key": SECRET, "api_key_env": "P_KEY"}]}
    _, errors = validate_config(document)
    assert errors == ["providers[0] (p): give api_key or api_key_env, not both"]


def test_config_status_reports_models_aliases_and_sections(tmp_path):
    assert config_status()["loaded"] is False
    path = write(tmp_path, VALID)
    reload(path)
    status = config_status()
    assert status["loaded"] is True and status["source"] == str(path) and status["loaded_at"]
    assert status["providers"] == {"total": 2, "enabled": 1}
    # `local` is disabled: its models are not served, the alias is.
    assert status["models"] == ["fast", "gpt-4o", "gpt-4o-mini"]
    assert status["aliases"] == ["fast"]
    assert status["sections"]["cache"]["ttl"] == 60
    assert status["sections"]["telemetry"] == {"enabled": True}
    assert status["sections"]["guardrails"] == {"enabled": False}


# --- manage.py loadconfig ------------------------------------------------------


def test_loadconfig_applies_and_prints_one_line(tmp_path):
    out = StringIO()
    call_command("loadconfig", str(write(tmp_path, VALID)), stdout=out)
    assert out.getvalue().count("\n") == 1 and "2 providers" in out.getvalue()
    assert Provider.objects.filter(from_config=True).count() == 2


def test_loadconfig_uses_the_configured_path_by_default(tmp_path, settings):
    settings.GATEWAY_CONFIG = str(write(tmp_path, VALID))
    call_command("loadconfig", stdout=StringIO())
    assert ConfigState.objects.get(pk=1).source == settings.GATEWAY_CONFIG


def test_loadconfig_rejects_bad_file_with_every_error(tmp_path):
    err = StringIO()
    with pytest.raises(CommandError, match=r"config rejected: 19 error\(s\)"):
        call_command("loadconfig", str(write(tmp_path, INVALID)), stderr=err)
    assert "frobnicate: unknown section" in err.getvalue()
    assert len(err.getvalue().splitlines()) == 19
    assert SECRET not in err.getvalue()
    assert not Provider.objects.exists() and not ConfigState.objects.exists()


def test_loadconfig_if_exists_skips_a_missing_file_quietly(tmp_path):
    out, err = StringIO(), StringIO()
    call_command("loadconfig", str(tmp_path / "none.yaml"), "--if-exists", stdout=out, stderr=err)
    assert out.getvalue() == err.getvalue() == ""
    with pytest.raises(CommandError):
        call_command("loadconfig", str(tmp_path / "none.yaml"), stderr=StringIO())


def test_provider_rules_are_the_model_fields_rules(db):
    """The YAML loader, the API and the admin check one set of rules: the model's."""
    from django.core.exceptions import ValidationError

    bad = {"max_retries": 11, "timeout": 0, "rate_limit_rpm": 0, "priority": 2**31, "models": ["bad model"]}
    for field, value in bad.items():
        _, errors = validate_config({"providers": [{"name": "p", "type": "openai", field: value}]})
        with pytest.raises(ValidationError) as model_error:
            Provider._meta.get_field(field).clean(value, None)
        message = " ".join(model_error.value.messages).rstrip(".")
        assert errors == [f"providers[0] (p).{field}: {message} (got {value!r})"]


def test_is_enabled_is_accepted_as_in_the_api_and_the_contract(db):
    document = {
        "providers": [
            {"name": "on", "type": "echo", "is_enabled": True},
            {"name": "off", "type": "echo", "is_enabled": False},
            {"name": "old", "type": "echo", "enabled": False},
        ]
    }
    config, errors = validate_config(document)
    assert errors == []
    apply_config(config, source="test")
    enabled = dict(Provider.objects.values_list("name", "is_enabled"))
    assert enabled == {"on": True, "off": False, "old": False}


def test_is_enabled_and_enabled_together_are_refused(db):
    document = {"providers": [{"name": "p", "type": "echo", "is_enabled": True, "enabled": False}]}
    _, errors = validate_config(document)
    assert errors == ["providers[0] (p).enabled: repeats is_enabled"]


def test_an_error_names_the_provider_and_the_bad_value(db):
    """CONTRACT section 6: not just an index, but which provider and what was wrong."""
    providers = [{"name": f"p{i}", "type": "echo"} for i in range(25)]
    providers.append({"name": "openai-eu", "type": "opneai", "priority": "high", "api_key": SECRET})
    _, errors = validate_config({"providers": providers})
    assert errors == [
        "providers[25] (openai-eu).type: must be one of openai, openai_compatible, anthropic, ollama, vllm, "
        "llamacpp, gemini, echo (got 'opneai')",
        "providers[25] (openai-eu).priority: must be a whole number (got 'high')",
    ]


def test_a_secret_value_is_never_shown_in_an_error(db):
    document = {"providers": [{"name": "p", "type": "openai", "api_key": ["not", SECRET]}]}
    _, errors = validate_config(document)
    assert errors == ["providers[0] (p).api_key: must be a string"]


def test_loadconfig_of_a_missing_file_is_one_line_and_a_nonzero_exit(tmp_path):
    """CONTRACT section 1, as an operator sees it: a real process, one stderr line."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "cli.sqlite3")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=root, env=env, check=True, timeout=120)
    missing = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "loadconfig", str(missing)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"CommandError: config rejected: {missing}: file not found"]


def test_an_override_may_be_scoped_to_a_tenant(tmp_path):
    Tenant.objects.create(name="acme")
    scoped = VALID.replace(
        "  - {user_id: alice, service: billing,", "  - {tenant: acme, user_id: alice, service: billing,"
    )
    ok, summary = reload(write(tmp_path, scoped))
    assert ok, summary
    assert Override.objects.get(user_id="alice").tenant.name == "acme"
    ok, errors = reload(write(tmp_path, scoped.replace("tenant: acme", "tenant: nowhere")))
    assert not ok and errors == ["overrides[0].tenant: unknown tenant 'nowhere'"]
