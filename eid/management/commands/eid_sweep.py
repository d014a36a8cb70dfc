"""Re-enqueue returned exports that no worker is moving (a worker died, a nudge was lost), and
webhook deliveries whose nudge was lost (eid.webhooks)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from eid.models import ReturnedExport
from eid.tasks import enqueue_advance
from eid.webhooks.tasks import requeue_lost


class Command(BaseCommand):
    help = "Nudge stale Descript imports back onto the queue. With --every, keep doing it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Repeat every N seconds (0: once).")

    def handle(self, *args, every: float = 0, **options) -> None:
        while True:
            ids = list(ReturnedExport.objects.stale().values_list("pk", flat=True))
            for export_id in ids:
                enqueue_advance(export_id)
            if ids or options["verbosity"] > 1:
                self.stdout.write(f"re-enqueued {len(ids)} stale import(s)")
            lost = requeue_lost()
            if lost:
                self.stdout.write(f"re-enqueued {lost} webhook delivery(ies) whose nudge was lost")
            if not every:
                return
            time.sleep(every)
