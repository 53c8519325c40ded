from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import shared_redis
from core.env import EnvError, database_from_url, env_bool, env_float, env_int

ROOT = Path(__file__).resolve().parents[2]


def test_database_url_is_parsed_for_postgres():
    assert database_from_url("postgres://u:p%40ss@db.local:6543/gw") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "gw",
        "USER": "u",
        "PASSWORD": "p@ss",
        "HOST": "db.local",
        "PORT": "6543",
    }


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h/"])
def test_unsupported_database_url_fails_loudly(url):
    with pytest.raises(EnvError):
        database_from_url(url)


def test_env_helpers_fail_loudly(monkeypatch):
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(EnvError):
        env_bool("X_BOOL")
    with pytest.raises(EnvError):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_BOOL", "yes")
    assert env_bool("X_BOOL") is True
    assert env_int("X_UNSET_INT", 7) == 7


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_positive_float_rejects_what_is_not_a_positive_number(monkeypatch, raw):
    monkeypatch.setenv("X_SECONDS", raw)
    with pytest.raises(EnvError, match="X_SECONDS"):
        env_float("X_SECONDS", 1.0, positive=True)


def test_positive_float_reads_a_positive_number(monkeypatch):
    monkeypatch.setenv("X_SECONDS", "0.25")
    assert env_float("X_SECONDS", 1.0, positive=True) == 0.25
    assert env_float("X_UNSET_SECONDS", 5.0, positive=True) == 5.0


def settings_in_a_fresh_process(**env) -> subprocess.CompletedProcess:
    """Import gateway.settings in a new interpreter with `env` added."""
    code = "import gateway.settings as s; print(s.REDIS_TIMEOUT, s.CACHES['default'].get('OPTIONS'))"
    environment = {**os.environ, **env}
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_redis_timeout_reaches_every_redis_client(monkeypatch):
    done = settings_in_a_fresh_process(REDIS_URL="redis://127.0.0.1:6379/15", REDIS_TIMEOUT="2.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2.5 ")
    assert "'SOCKET_TIMEOUT': 2.5" in done.stdout and "'SOCKET_CONNECT_TIMEOUT': 2.5" in done.stdout


def test_redis_timeout_that_is_not_positive_stops_start_up():
    done = settings_in_a_fresh_process(REDIS_TIMEOUT="0")
    assert done.returncode != 0
    assert "REDIS_TIMEOUT='0' is not a positive number" in done.stderr


def test_sync_redis_clients_get_the_timeout(settings, monkeypatch):
    monkeypatch.setattr(shared_redis, "_sync_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.REDIS_TIMEOUT = 1.5
    client = shared_redis.sync_redis()
    try:
        options = client.connection_pool.connection_kwargs
        assert options["socket_timeout"] == 1.5 and options["socket_connect_timeout"] == 1.5
    finally:
        client.close()
