"""python manage.py purge_idempotency_keys: delete Idempotency-Key rows older than their 24 hours."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...idempotency import purge_expired


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key rows (run daily; each token also purges its own as it goes)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Purged {purge_expired()} expired idempotency key(s).")
