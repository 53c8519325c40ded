"""core.env: typed readers of environment variables that fail loudly."""

from __future__ import annotations

import pytest

from core.env import EnvError, database_from_url, env_bool, env_float, env_int


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
