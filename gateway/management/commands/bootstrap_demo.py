from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import ApiKey, ApiUser, Tenant
from providers.models import Provider, ProviderType

DEMO = "demo"
ADMIN = "admin"


class Command(BaseCommand):
    help = (
        "Laptop quick start (run.sh), not production (scripts/serve.sh never calls it): make sure a demo tenant, "
        "user and key, the built-in echo provider and, while there is no superuser, an admin login exist; "
        "print the key and the admin password when they are new (once: neither is stored in plaintext)."
    )

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
            password = self.create_admin()
        if existing is None:
            self.stdout.write(f"Demo API key (shown once, copy it now): {raw}")
        else:
            self.stdout.write(
                f"Demo key {existing.prefix}… already exists (its plaintext is not stored). "
                f"New one: python manage.py genkey --tenant {DEMO} --user {DEMO}"
            )
        if password is not None:
            self.stdout.write(f"Admin login for /admin/ (shown once, copy it now): user {ADMIN}, password {password}")

    def create_admin(self) -> str | None:
        """A superuser with a random password, on a database that has none yet
        (and no user of that name); its password, or None when nothing was made."""
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists() or users.filter(username=ADMIN).exists():
            return None
        password = secrets.token_urlsafe(12)
        users.create_superuser(ADMIN, email="", password=password)
        return password
