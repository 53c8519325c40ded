from __future__ import annotations

import json
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, ApiUser, Tenant
from core.commands import GatewayCommand, add_limit_arguments, days, limit_values, positive_int
from core.names import MODEL_NAME_RE, name_validator


class Command(GatewayCommand):
    help = "Create an API key (and its tenant and user if missing); prints the plaintext key once."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--user", required=True, help="username inside the tenant")
        parser.add_argument("--name", default="", help="a label for the key")
        add_limit_arguments(parser)
        parser.add_argument("--max-parallel", type=positive_int)
        parser.add_argument("--models", default="", help="comma-separated models the key may use")
        parser.add_argument("--expires-in-days", type=days)
        parser.add_argument("--admin", action="store_true", help="admin scope for the key's tenant")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        for label in ("tenant", "user"):
            try:
                name_validator(options[label])
            except ValidationError as exc:
                raise CommandError(f"invalid {label} name {options[label]!r}: {exc.messages[0]}") from None
        models = [m.strip() for m in options["models"].split(",") if m.strip()]
        for model in models:
            if not MODEL_NAME_RE.match(model):
                raise CommandError(f"invalid model name {model!r}")
        if len(options["name"]) > 100:
            raise CommandError("--name is longer than 100 characters")
        fields = limit_values(options)
        if options["max_parallel"] is not None:
            fields["max_parallel"] = options["max_parallel"]
        if options["expires_in_days"]:
            fields["expires_at"] = timezone.now() + timedelta(days=options["expires_in_days"])

        with transaction.atomic():
            tenant, _ = Tenant.objects.get_or_create(name=options["tenant"])
            user, _ = ApiUser.objects.get_or_create(tenant=tenant, username=options["user"])
            key, raw = ApiKey.objects.create_key(
                user=user, name=options["name"], is_admin=options["admin"], allowed_models=models, **fields
            )

        if options["json"]:
            payload = {
                "api_key": raw,
                "id": key.pk,
                "tenant": tenant.name,
                "user": user.username,
                "admin": key.is_admin,
            }
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(raw)
