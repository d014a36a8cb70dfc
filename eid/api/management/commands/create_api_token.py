"""python manage.py create_api_token NAME [--read-only] [--owner USERNAME]: prints the key once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...models import ApiToken


class Command(BaseCommand):
    help = "Make a service token for the API and print its key (once: only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who uses it, e.g. the pipeline's name.")
        parser.add_argument("--read-only", action="store_true", help="May read, may not write.")
        parser.add_argument("--owner", metavar="USERNAME",
                            help="Act for this user only (default: for every user).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name or len(name) > 100:
            raise CommandError("NAME must be 1 to 100 characters.")
        owner = None
        if options["owner"]:
            model = get_user_model()
            owner = model.objects.filter(**{model.USERNAME_FIELD: options["owner"]}).first()
            if owner is None:
                raise CommandError(f"No user {options['owner']!r}.")
        token, key = ApiToken.issue(name, read_only=options["read_only"], owner=owner)
        scope = f"acting for {owner.get_username()} only" if owner else "acting for every user"
        self.stdout.write(f"Made token {token.name!r} ({token.prefix}…), "
                          f"{'read-only' if token.read_only else 'read and write'}, {scope}.")
        self.stdout.write("The key is shown this once (only its hash is kept). Send it as: "
                          "Authorization: Bearer <key>")
        self.stdout.write(key)
