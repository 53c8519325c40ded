"""`manage.py bootstrap_demo`: the laptop quick start's demo tenant, key and echo provider."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from accounts.models import ApiKey, ApiUser
from providers.models import Provider


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_bootstrap_demo_prints_key_once(db):
    first = run("bootstrap_demo")
    raw = first.rsplit(" ", 1)[-1].strip()
    assert ApiKey.objects.verify(raw).tenant.name == "demo"
    second = run("bootstrap_demo")
    assert raw not in second and "already exists" in second
    assert ApiUser.objects.filter(username="demo").count() == 1
    assert Provider.objects.get(name="echo").type == "echo"
