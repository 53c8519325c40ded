from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DatabaseError
from redis.exceptions import RedisError

from alerts import channels, evaluator
from core.commands import GatewayCommand


class Command(GatewayCommand):
    help = (
        "Evaluate every enabled alert rule once (for cron): fire, resolve and notify. "
        "Skips, with exit status 0, while another evaluator is running."
    )

    def handle(self, *args, **options):
        try:
            outcome = evaluator.run()
        except (DatabaseError, RedisError) as exc:
            raise CommandError(f"alert evaluation failed: {' '.join(str(exc).split())}") from None
        if outcome is None:
            self.stdout.write("Skipped: another evaluator is running.")
            return
        # The deliveries run in threads; each is bounded by its timeouts and retries.
        channels.wait(outcome.deliveries)
        self.stdout.write(f"Alerts: {outcome}.")
