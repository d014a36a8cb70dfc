from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.seed import DEMO_USER, OPERATOR_USER, ensure_operator, ensure_presets, seed


class Command(BaseCommand):
    help = "Create the demo user, an operator and three recordings with generated media (needs the bucket)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--without-debug", action="store_true",
                            help="Seed even though DEBUG is off (benchmarks). Never on a real site.")

    def handle(self, *args, without_debug: bool = False, **options) -> None:
        # The demo's users have published passwords: a site that is not in DEBUG must not get them.
        if not settings.DEBUG and not without_debug:
            raise CommandError("seed_demo creates users with published passwords; it runs only with DEBUG on.")
        recordings = seed()
        ensure_operator()
        ensure_presets()
        self.stdout.write(f"demo user {DEMO_USER!r} with {len(recordings)} recordings; operator {OPERATOR_USER!r}")
