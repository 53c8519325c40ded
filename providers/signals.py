from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from providers import registry
from providers.models import ConfigState, ModelAlias, Override, Price, Provider


def _changed(sender, **kwargs) -> None:
    registry.invalidate()


def connect() -> None:
    for model in (Provider, ModelAlias, Override, Price, ConfigState):
        post_save.connect(_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-delete")
