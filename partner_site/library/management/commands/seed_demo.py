from django.core.management.base import BaseCommand

from demo.seed import DEMO_USER, ensure_operator, seed


class Command(BaseCommand):
    help = "Create the demo user and three recordings with generated media (needs the bucket reachable)."

    def handle(self, *args, **options) -> None:
        recordings = seed()
        ensure_operator()
        self.stdout.write(f"demo user {DEMO_USER!r} with {len(recordings)} recordings")
