from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from core.commands import GatewayCommand
from providers.config import reload


class Command(GatewayCommand):
    help = "Apply a YAML config file (providers, aliases, prices, limits); a bad file changes nothing."

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="the YAML file (default: settings.GATEWAY_CONFIG)")
        parser.add_argument(
            "--if-exists", action="store_true", help="do nothing, quietly, when the file does not exist (start-up)"
        )

    def handle(self, *args, **options):
        path = options["path"] or settings.GATEWAY_CONFIG
        if options["if_exists"] and not Path(path).exists():
            return
        ok, result = reload(path)
        if not ok and len(result) == 1:
            raise CommandError(f"config rejected: {result[0]}")  # one problem, one line
        if not ok:
            for error in result:
                self.stderr.write(error)
            raise CommandError(f"config rejected: {len(result)} error(s)")
        counts = ", ".join(f"{count} {name}" for name, count in result.items())
        self.stdout.write(f"Config applied from {path}: {counts}")
