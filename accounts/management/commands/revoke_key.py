from __future__ import annotations

from django.core.management.base import CommandError

from accounts.models import ApiKey, Tenant, hash_key
from core.commands import GatewayCommand, positive_int


class Command(GatewayCommand):
    help = "Revoke API keys: one by plaintext or id, or every key of a user."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--key", help="the plaintext key")
        which.add_argument("--id", type=positive_int, help="the key's id")
        which.add_argument("--user", help="revoke every key of this username")
        parser.add_argument("--tenant", help="only in this tenant (needed when the username is in several)")

    def handle(self, *args, **options):
        keys = ApiKey.objects.select_related("user", "tenant")
        if options["tenant"]:
            tenant = Tenant.objects.filter(name=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"unknown tenant {options['tenant']!r}")
            keys = keys.filter(tenant=tenant)
        if options["key"]:
            keys = keys.filter(key_hash=hash_key(options["key"]))
        elif options["id"] is not None:
            keys = keys.filter(pk=options["id"])
        else:
            keys = keys.filter(user__username=options["user"])
            tenants = set(keys.values_list("tenant__name", flat=True))
            if len(tenants) > 1:
                raise CommandError(
                    f"user {options['user']!r} exists in tenants {', '.join(sorted(tenants))}; pass --tenant"
                )
        keys = list(keys)
        if not keys:
            raise CommandError("no matching key")
        for key in keys:
            key.revoke()
            self.stdout.write(f"Revoked key {key.prefix}… (id {key.pk}, user {key.user.username})")
