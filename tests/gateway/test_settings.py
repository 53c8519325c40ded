from __future__ import annotations

import pytest

from gateway.lib.env import EnvError, database_from_url, env_bool, env_int


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
