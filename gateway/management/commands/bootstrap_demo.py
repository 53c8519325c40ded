from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import ApiKey, ApiUser, Tenant
from providers.models import Provider, ProviderType

DEMO = "demo"


class Command(BaseCommand):
    help = "Make sure a demo tenant, user and key and the built-in echo provider exist; print the key when it is new."

    def handle(self, *args, **options):
        with transaction.atomic():
            tenant, _ = Tenant.objects.get_or_create(name=DEMO)
            user, _ = ApiUser.objects.get_or_create(tenant=tenant, username=DEMO)
            existing = ApiKey.objects.filter(user=user, name=DEMO, is_active=True).first()
            if existing is None:
                _, raw = ApiKey.objects.create_key(user=user, name=DEMO)
            # Lowest priority: a first request works with no upstream, and never shadows a real provider.
            Provider.objects.get_or_create(
                name="echo",
                defaults={"type": ProviderType.ECHO, "models": ["echo"], "priority": -100, "display_name": "Echo"},
            )
        if existing is None:
            self.stdout.write(f"Demo API key (shown once, copy it now): {raw}")
        else:
            self.stdout.write(
                f"Demo key {existing.prefix}… already exists (its plaintext is not stored). "
                f"New one: python manage.py genkey --tenant {DEMO} --user {DEMO}"
            )
