"""Keep cached key lookups (accounts.keycache) in step with the database."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from accounts import keycache
from accounts.models import ApiKey, ApiUser, Tenant, key_hashes_retired


def _key_changed(sender, instance: ApiKey, **kwargs) -> None:
    keycache.forget([instance.key_hash])


def _user_changed(sender, instance: ApiUser, **kwargs) -> None:
    # Disabling a user or tenant (or changing its limits) must reach its keys.
    keycache.forget(ApiKey.objects.filter(user=instance).values_list("key_hash", flat=True))


def _tenant_changed(sender, instance: Tenant, **kwargs) -> None:
    keycache.forget(ApiKey.objects.filter(tenant=instance).values_list("key_hash", flat=True))


def _retired(sender, digests, **kwargs) -> None:
    keycache.forget(digests)


def connect() -> None:
    post_save.connect(_key_changed, sender=ApiKey, dispatch_uid="keycache-key-save")
    post_delete.connect(_key_changed, sender=ApiKey, dispatch_uid="keycache-key-delete")
    post_save.connect(_user_changed, sender=ApiUser, dispatch_uid="keycache-user-save")
    post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="keycache-tenant-save")
    key_hashes_retired.connect(_retired, sender=ApiKey, dispatch_uid="keycache-retired")
    # Deleting a user or tenant cascades to its keys, whose post_delete forgets them.
