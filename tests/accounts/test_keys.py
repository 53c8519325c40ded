from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import KEY_RE, ApiKey, hash_key

pytestmark = pytest.mark.django_db


def all_database_text() -> str:
    """Every value in every table, as one string, to search for leaked secrets."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_new_key_has_the_contract_format(world):
    assert KEY_RE.match(world.member_raw)
    assert world.member_raw.startswith("llm_") and len(world.member_raw) == 36


def test_only_hash_and_display_prefix_are_stored(world):
    key = ApiKey.objects.get(pk=world.member_key.pk)
    assert key.key_hash == hash_key(world.member_raw)
    assert key.prefix == world.member_raw[:12]
    dump = all_database_text()
    assert world.member_raw not in dump
    assert world.member_raw[4:] not in dump  # not even the secret part without "llm_"


def test_verify_returns_the_key_for_its_plaintext(world):
    assert ApiKey.objects.verify(world.member_raw) == world.member_key


@pytest.mark.parametrize("raw", [None, "", "llm_short", "sk-" + "a" * 32, "llm_" + "g" * 32, "llm_" + "A" * 32])
def test_verify_refuses_malformed_keys_without_a_query(raw, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert ApiKey.objects.verify(raw) is None


def test_verify_is_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert ApiKey.objects.verify(world.member_raw) is not None


def test_revoked_key_is_refused(world):
    world.member_key.revoke()
    assert ApiKey.objects.verify(world.member_raw) is None


def test_revoke_keeps_first_revocation_time(world):
    world.member_key.revoke()
    first = ApiKey.objects.get(pk=world.member_key.pk).revoked_at
    ApiKey.objects.get(pk=world.member_key.pk).revoke()
    assert ApiKey.objects.get(pk=world.member_key.pk).revoked_at == first


def test_expired_key_is_refused(world):
    world.member_key.expires_at = timezone.now() - timedelta(seconds=1)
    world.member_key.save()
    assert ApiKey.objects.verify(world.member_raw) is None


def test_key_of_disabled_user_or_tenant_is_refused(world):
    world.member.is_active = False
    world.member.save()
    assert ApiKey.objects.verify(world.member_raw) is None
    world.acme.is_active = False
    world.acme.save()
    assert ApiKey.objects.verify(world.owner_raw) is None


def test_rotate_gives_a_new_secret_and_kills_the_old(world):
    new_raw = world.member_key.rotate()
    assert new_raw != world.member_raw and KEY_RE.match(new_raw)
    assert ApiKey.objects.verify(world.member_raw) is None
    assert ApiKey.objects.verify(new_raw).pk == world.member_key.pk


def test_allowed_models_empty_means_all(world):
    assert world.member_key.allows_model("anything")
    world.member_key.allowed_models = ["gpt-4o-mini"]
    assert world.member_key.allows_model("gpt-4o-mini")
    assert not world.member_key.allows_model("gpt-4o")
