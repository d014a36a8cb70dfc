"""`manage.py descript`: Descript's jobs API and auto-edit batches from the command line.

    descript import MEDIA... [--project-name N] [--folder F] [--team-access A] [--language xx]
                             [--multitrack [--offset NAME=SECONDS]...] [--composition NAME]
                             [--callback-url U] [--wait] [--json]
    descript agent (--project-id P | --project-name N) --prompt TEXT [--composition-id C] [--model M] ...
    descript publish --project-id P [--composition-id C] [--media-type Audio|Video] [--resolution R] ...
    descript jobs list|get|cancel|watch ...
    descript batch RECORDING_REF... --user USERNAME (--prompt TEXT | --preset NAME) [--wait] ...

Option names follow the request fields of Descript's openapi document. The work is in
eid.jobs.cli; this module is the parser and the exit.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, DjangoHelpFormatter

from eid.jobs.cli.batch import run_batch
from eid.jobs.cli.exits import EXIT_CODES_HELP, CliFailure, ExitCode, from_jobs_error
from eid.jobs.cli.jobs import (
    run_agent,
    run_import,
    run_jobs_cancel,
    run_jobs_get,
    run_jobs_list,
    run_jobs_watch,
    run_publish,
)
from eid.jobs.cli.output import Output
from eid.jobs.client import ACCESS_LEVELS, MEDIA_TYPES, RESOLUTIONS, TEAM_ACCESS, JobsError

Runner = Callable[[dict[str, Any], Output], ExitCode]
JOB_TYPES = ("import/project_media", "agent", "publish")


class _Help(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, and the exit-code table kept as written."""


def _media_type(value: str) -> str:
    return value.strip().capitalize()


class Command(BaseCommand):
    help = "Descript's jobs API: import media, run Underlord, publish, follow jobs, auto-edit recordings in batches."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, formatter_class=_Help, epilog=EXIT_CODES_HELP, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true",
                            help="Machine-readable output only on stdout, one JSON object per line (errors too).")
        waits = argparse.ArgumentParser(add_help=False)
        waits.add_argument("--wait", action="store_true", help="Follow the job until it stops, with live progress.")
        waits.add_argument("--callback-url", help="Descript POSTs the job's status here when it stops.")

        def sub(group: Any, name: str, runner: Runner, help: str, parents: list[argparse.ArgumentParser]) -> Any:
            p = group.add_parser(name, help=help, description=help, parents=parents, formatter_class=_Help,
                                 epilog=EXIT_CODES_HELP)
            p.set_defaults(runner=runner)
            return p

        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

        p = sub(commands, "import", run_import, "Create a project and import media into it "
                "(POST /jobs/import/project_media).", [common, waits])
        p.add_argument("media", nargs="+", metavar="MEDIA",
                       help="An https link, a Google Drive or Dropbox share link (made a direct download), "
                            "or a key in the site's bucket (presigned for 48 hours).")
        p.add_argument("--project-name", help="The new project's name (default: the first file's name).")
        p.add_argument("--folder", "--folder-name", dest="folder",
                       help="Folder path for the project, such as Clients/Acme (default: EID_JOBS_FOLDER).")
        p.add_argument("--team-access", choices=TEAM_ACCESS, help="Drive members' access to the new project.")
        p.add_argument("--language", help="ISO 639-1 code for transcription (default: detected).")
        p.add_argument("--multitrack", action="store_true", help="Make the files one multitrack sequence.")
        p.add_argument("--offset", action="append", default=[], metavar="NAME=SECONDS",
                       help="A track's start in the sequence (NAME: its file name or the MEDIA as given).")
        p.add_argument("--composition", metavar="NAME", help="Also create a composition of the media.")

        p = sub(commands, "agent", run_agent, "Ask Underlord to edit a project (POST /jobs/agent).", [common, waits])
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--project-id", help="The project to edit.")
        target.add_argument("--project-name", help="A new project for Underlord to create.")
        p.add_argument("--prompt", required=True, help="What Underlord should do, in one go.")
        p.add_argument("--composition-id", help="The composition to edit (with --project-id).")
        p.add_argument("--model", help="The AI model (default: Descript's).")
        p.add_argument("--team-access", choices=TEAM_ACCESS, help="Drive members' access (with --project-name).")

        p = sub(commands, "publish", run_publish, "Publish a composition (POST /jobs/publish).", [common, waits])
        p.add_argument("--project-id", required=True)
        p.add_argument("--composition-id")
        p.add_argument("--media-type", type=_media_type, choices=MEDIA_TYPES)
        p.add_argument("--resolution", choices=RESOLUTIONS, help="For video.")
        p.add_argument("--access-level", choices=ACCESS_LEVELS, help="The share page's access (default: the drive's).")

        jobs = commands.add_parser("jobs", help="List, show, cancel or follow jobs.", formatter_class=_Help,
                                   epilog=EXIT_CODES_HELP)
        jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
        p = sub(jobs_commands, "list", run_jobs_list, "Recent jobs, newest first (GET /jobs, every page).", [common])
        p.add_argument("--project-id")
        p.add_argument("--type", choices=JOB_TYPES)
        since = p.add_mutually_exclusive_group()
        since.add_argument("--since", metavar="ISO", help="Created after this time (default: 7 days ago).")
        since.add_argument("--days", type=float, help="Created in the last N days (at most 30).")
        p.add_argument("--until", metavar="ISO", help="Created before this time.")
        p.add_argument("--limit", type=int, default=20, help="At most this many jobs in all (default 20).")
        p.add_argument("--page-size", type=int, default=100,
                       help="Jobs per request (Descript's `limit`, 1 to 100); pages are followed up to --limit.")
        for name, runner, words in (("get", run_jobs_get, "One job's state and result."),
                                    ("cancel", run_jobs_cancel, "Cancel a job (DELETE /jobs/{id})."),
                                    ("watch", run_jobs_watch, "Follow a job until it stops.")):
            p = sub(jobs_commands, name, runner, words, [common])
            p.add_argument("job_id", metavar="JOB_ID")

        p = sub(commands, "batch", run_batch, "Auto-edit recordings of a user: import, Underlord, publish, "
                "and the edit back as a new version (the worker does the work).", [common])
        p.add_argument("refs", nargs="+", metavar="RECORDING_REF", help="The recordings' ids.")
        p.add_argument("--user", required=True, metavar="USERNAME", help="Whose recordings they are.")
        p.add_argument("--option", metavar="NAME", help="The download option to send for every recording "
                       "(e.g. mix); default: the multitrack option when there is one.")
        what = p.add_mutually_exclusive_group()
        what.add_argument("--prompt", help="What Underlord should do.")
        what.add_argument("--preset", metavar="NAME", help="A prompt preset by name.")
        p.add_argument("--media-type", type=_media_type, choices=MEDIA_TYPES)
        p.add_argument("--resolution", help="For video: 720p, 1080p or 4K.")
        p.add_argument("--max-in-flight", type=int, help="Auto-edits of this batch at Descript at once.")
        p.add_argument("--name", help="A name for the batch's page.")
        p.add_argument("--wait", action="store_true", help="Show counts by state until every auto-edit is final.")

    def handle(self, *args: Any, **options: Any) -> None:
        out = Output(self.stdout, self.stderr, json_mode=options["json"])
        runner: Runner = options["runner"]
        try:
            code = runner(options, out)
        except JobsError as exc:
            failure = from_jobs_error(exc)
            out.failure(failure)
            raise SystemExit(int(failure.code)) from None
        except CliFailure as failure:
            out.failure(failure)
            raise SystemExit(int(failure.code)) from None
        if code != ExitCode.OK:
            raise SystemExit(int(code))
