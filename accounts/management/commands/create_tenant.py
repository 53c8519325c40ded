from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from accounts.models import Tenant
from core.commands import GatewayCommand, add_limit_arguments, limit_values
from core.names import name_validator


class Command(GatewayCommand):
    help = "Create a tenant, optionally with a token quota, USD budget and rate limits."

    def add_arguments(self, parser):
        parser.add_argument("name")
        add_limit_arguments(parser)

    def handle(self, *args, **options):
        name = options["name"]
        try:
            name_validator(name)
        except ValidationError as exc:
            raise CommandError(f"invalid tenant name {name!r}: {exc.messages[0]}") from None
        if Tenant.objects.filter(name=name).exists():
            raise CommandError(f"tenant {name!r} already exists")
        tenant = Tenant.objects.create(name=name, **limit_values(options))
        self.stdout.write(f"Created tenant {tenant.name} (id {tenant.pk})")
