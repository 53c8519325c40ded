from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey, Tenant

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_with_limits():
    run("create_tenant", "acme", "--token-quota", "5000", "--budget-usd", "2.5", "--rpm", "60", "--tpm", "9000")
    tenant = Tenant.objects.get(name="acme")
    assert (tenant.token_quota, str(tenant.budget_usd), tenant.rpm, tenant.tpm) == (5000, "2.500000", 60, 9000)


def test_create_tenant_twice_fails(world):
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme")


@pytest.mark.parametrize(
    "args", [["acme", "--rpm", "lots"], ["acme", "--token-quota", "-5"], ["acme", "--budget-usd", "x"], ["bad name"]]
)
def test_create_tenant_bad_input_fails(db, args):
    with pytest.raises(CommandError):
        run("create_tenant", *args)
    assert not Tenant.objects.exists()


def test_genkey_creates_tenant_user_and_key():
    raw = run("genkey", "--tenant", "acme", "--user", "ann").strip()
    key = ApiKey.objects.verify(raw)
    assert key.user.username == "ann" and key.tenant.name == "acme" and not key.is_admin


def test_genkey_json_and_all_options(world):
    out = run(
        "genkey", "--tenant", "acme", "--user", "member", "--name", "ci", "--token-quota", "100",
        "--budget-usd", "1.25", "--rpm", "5", "--tpm", "500", "--max-parallel", "2",
        "--models", "gpt-4o-mini, claude-3-5-haiku", "--expires-in-days", "3", "--admin", "--json",
    )  # fmt: skip
    payload = json.loads(out)
    assert set(payload) == {"api_key", "id", "tenant", "user", "admin"}
    assert (payload["tenant"], payload["user"], payload["admin"]) == ("acme", "member", True)
    key = ApiKey.objects.get(pk=payload["id"])
    assert key.user == world.member  # existing user reused
    assert key.allowed_models == ["gpt-4o-mini", "claude-3-5-haiku"]
    assert (key.token_quota, key.rpm, key.tpm, key.max_parallel, key.name) == (100, 5, 500, 2, "ci")
    assert key.expires_at is not None and ApiKey.objects.verify(payload["api_key"]) == key


@pytest.mark.parametrize(
    "extra",
    [
        ["--rpm", "-1"],
        ["--max-parallel", "many"],
        ["--models", "bad model"],
        ["--expires-in-days", "0"],
        ["--expires-in-days", "99999999999"],
        ["--budget-usd", "1000000000"],
        ["--rpm", "10000000000"],
        ["--token-quota", str(2**63)],
    ],
)
def test_genkey_bad_input_fails_and_creates_nothing(db, extra):
    with pytest.raises(CommandError):
        run("genkey", "--tenant", "acme", "--user", "ann", *extra)
    assert not ApiKey.objects.exists() and not Tenant.objects.exists()


def test_genkey_requires_tenant_and_user(db):
    with pytest.raises(CommandError):
        run("genkey", "--user", "ann")


def test_revoke_key_by_key_id_and_user(world):
    run("revoke_key", "--key", world.member_raw)
    assert ApiKey.objects.verify(world.member_raw) is None
    run("revoke_key", "--id", str(world.owner_key.pk))
    assert ApiKey.objects.verify(world.owner_raw) is None
    run("revoke_key", "--user", "outsider")
    assert ApiKey.objects.verify(world.outsider_raw) is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["--key", "llm_" + "0" * 32], "no matching key"),
        (["--id", "424242"], "no matching key"),
        (["--user", "nobody"], "no matching key"),
        (["--user", "member", "--tenant", "nowhere"], "unknown tenant"),
    ],
)
def test_revoke_key_unknown_fails(world, args, message):
    with pytest.raises(CommandError, match=message):
        run("revoke_key", *args)


def test_revoke_key_ambiguous_username_needs_tenant(world, factory):
    other = factory.make_user(world.globex, "member")
    factory.make_key(other)
    with pytest.raises(CommandError, match="pass --tenant"):
        run("revoke_key", "--user", "member")
    run("revoke_key", "--user", "member", "--tenant", "globex")
    assert ApiKey.objects.verify(world.member_raw) is not None


def test_revoke_key_needs_exactly_one_selector(world):
    with pytest.raises(CommandError):
        run("revoke_key")
    with pytest.raises(CommandError):
        run("revoke_key", "--id", "1", "--user", "member")


def cli(*args, sqlite: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SQLITE_PATH"] = str(sqlite)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path):
    """As an operator sees it: real process, real exit code, one stderr line."""
    sqlite = tmp_path / "cli.sqlite3"
    assert cli("migrate", "--noinput", sqlite=sqlite).returncode == 0
    made = cli("genkey", "--tenant", "acme", "--user", "ann", "--json", sqlite=sqlite)
    assert made.returncode == 0 and json.loads(made.stdout)["tenant"] == "acme"
    for args in (
        ["create_tenant", "acme"],
        ["create_tenant", "x", "--rpm", "lots"],
        ["revoke_key", "--id", "999"],
        ["revoke_key", "--user", "ann", "--tenant", "nowhere"],
        ["genkey", "--tenant", "acme"],
        ["genkey", "--tenant", "acme", "--user", "ann", "--budget-usd", "1000000000"],
        ["create_tenant", "big", "--tpm", "99999999999"],
    ):
        result = cli(*args, sqlite=sqlite)
        assert result.returncode != 0, args
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
