from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core import shared_redis

ROOT = Path(__file__).resolve().parents[2]


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
