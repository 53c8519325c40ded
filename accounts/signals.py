"""Keep cached key lookups (accounts.keycache) in step with the database."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from accounts.models import ApiKey, ApiUser, Tenant, forget_cached_keys


def _key_changed(sender, instance: ApiKey, **kwargs) -> None:
    forget_cached_keys([instance.key_hash])


def _user_changed(sender, instance: ApiUser, **kwargs) -> None:
    # Disabling a user or tenant (or changing its limits) must reach its keys.
    forget_cached_keys(ApiKey.objects.filter(user=instance).values_list("key_hash", flat=True))


def _tenant_changed(sender, instance: Tenant, **kwargs) -> None:
    forget_cached_keys(ApiKey.objects.filter(tenant=instance).values_list("key_hash", flat=True))


def connect() -> None:
    post_save.connect(_key_changed, sender=ApiKey, dispatch_uid="keycache-key-save")
    post_delete.connect(_key_changed, sender=ApiKey, dispatch_uid="keycache-key-delete")
    post_save.connect(_user_changed, sender=ApiUser, dispatch_uid="keycache-user-save")
    post_save.connect(_tenant_changed, sender=Tenant, dispatch_uid="keycache-tenant-save")
    # Deleting a user or tenant cascades to its keys, whose post_delete forgets them.
