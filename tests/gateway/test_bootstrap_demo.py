"""`manage.py bootstrap_demo`: the laptop quick start's demo tenant, key, echo provider and admin login."""

from __future__ import annotations

import re
from io import StringIO

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiKey, ApiUser
from providers.models import Provider

KEY_LINE = re.compile(r"Demo API key \(shown once, copy it now\): (llm_[0-9a-f]{32})$", re.M)
ADMIN_LINE = re.compile(r"Admin login for /admin/ \(shown once, copy it now\): user admin, password (\S+)$", re.M)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_bootstrap_demo_prints_key_once(db):
    first = run("bootstrap_demo")
    raw = KEY_LINE.search(first).group(1)
    assert ApiKey.objects.verify(raw).tenant.name == "demo"
    second = run("bootstrap_demo")
    assert raw not in second and "already exists" in second
    assert ApiUser.objects.filter(username="demo").count() == 1
    assert Provider.objects.get(name="echo").type == "echo"


def test_bootstrap_demo_prints_an_admin_password_once_that_logs_in(db):
    first = run("bootstrap_demo")
    password = ADMIN_LINE.search(first).group(1)
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff
    browser = Client()
    assert browser.login(username="admin", password=password)
    assert browser.get("/admin/").status_code == 200

    second = run("bootstrap_demo")
    assert ADMIN_LINE.search(second) is None and password not in second
    assert get_user_model().objects.count() == 1


def test_no_admin_login_is_made_when_a_superuser_exists(db):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")
    output = run("bootstrap_demo")
    assert ADMIN_LINE.search(output) is None and "password" not in output
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["ops"]
