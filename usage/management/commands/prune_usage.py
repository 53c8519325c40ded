from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.commands import GatewayCommand, days, whole_number
from usage.models import UsageRecord


class Command(GatewayCommand):
    help = "Delete usage records older than N days, a batch at a time."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=days, required=True, metavar="N")
        parser.add_argument(
            "--batch-size", type=whole_number(100_000, minimum=1), default=5000, help="rows per DELETE (default 5000)"
        )

    def handle(self, *args, **options):
        cutoff = timezone.now() - timedelta(days=options["older_than_days"])
        deleted = self.prune(cutoff, options["batch_size"])
        self.stdout.write(f"Deleted {deleted} usage record(s) older than {cutoff:%Y-%m-%d %H:%M:%S %Z}.")

    def prune(self, cutoff, batch_size: int) -> int:
        """Delete in short transactions of `batch_size` ids each, so the recorder's
        inserts never wait behind one long DELETE holding locks on millions of rows."""
        old = UsageRecord.objects.filter(created_at__lt=cutoff).order_by("created_at")
        deleted = 0
        while ids := list(old.values_list("pk", flat=True)[:batch_size]):
            count, _ = UsageRecord.objects.filter(pk__in=ids).delete()
            deleted += count
        return deleted
