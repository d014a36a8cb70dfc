"""`descript batch`: auto-edits of many recordings of one user, through the state machine.

The command only starts them (eid.jobs.starting.start_batch: rows, then a nudge to the worker)
and, with --wait, watches the rows; the worker does the work. Waiting ends when every auto-edit is
final, or when the only ones left wait for a person's choice (a partial import: go on or stop).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..models import AutoEdit, AutoEditBatch, PromptPreset
from ..starting import AutoEditRefused, start_batch
from ..status import batch_counts, describe
from .exits import CliFailure, ExitCode
from .output import Output

REFRESH_SECONDS = 1.0  # the rows are local: reading them costs Descript nothing
_ACTIVE = [s for s in AutoEdit.State.values if s not in AutoEdit.FINAL_STATES and s != AutoEdit.State.NEEDS_CHOICE]


def run_batch(opts: dict[str, Any], out: Output, *, sleep: Callable[[float], None] = time.sleep) -> ExitCode:
    user = _user(opts["user"])
    preset = _preset(opts["preset"]) if opts["preset"] else None
    refs = [ref.strip() for ref in opts["refs"]]
    try:
        batch, outcomes = start_batch(
            items=[(user, ref, opts.get("option") or None) for ref in refs], prompt=opts["prompt"], preset=preset,
            media_type=opts["media_type"], resolution=opts["resolution"], via=AutoEditBatch.Via.CLI,
            requested_by="cli", name=opts["name"] or "", max_in_flight=opts["max_in_flight"],
        )
    except AutoEditRefused as refusal:
        code = ExitCode.UNREACHABLE if refusal.kind == "not_configured" else ExitCode.BAD_INPUT
        raise CliFailure(code, str(refusal.kind), refusal.reason) from None
    items: list[dict[str, Any]] = []
    lines = [f"Batch {batch.pk} ({batch.media_type}{' ' + batch.resolution if batch.resolution else ''}): "
             f"{len(refs)} recording(s) of {opts['user']}"]
    for ref, outcome in outcomes:
        if isinstance(outcome, AutoEditRefused):
            items.append({"ref": ref, "refused": {"kind": str(outcome.kind), "reason": outcome.reason}})
            lines.append(f"  {ref}: refused: {outcome.reason}")
        else:
            items.append({"ref": ref, "auto_edit": describe(outcome)})
            lines.append(f"  {ref}: {outcome.get_state_display().lower()} (auto-edit {outcome.pk})")
    started = sum(1 for item in items if "auto_edit" in item)
    out.emit({"batch": str(batch.pk), "items": items, "counts": batch_counts(batch)}, "\n".join(lines))
    refused = len(items) - started
    if not opts["wait"] or not started:
        return _code(ok=started, failed=refused)
    counts = _watch(batch, out, sleep)
    final = [describe(ae) for ae in AutoEdit.objects.filter(batch=batch).order_by("created_at")]
    out.emit({"batch": str(batch.pk), "final": True, "counts": counts, "auto_edits": final},
             "\n".join(f"  {d['item_ref']}: {d['state_words']}" + (f": {d['reason']}" if d["reason"] else "")
                       for d in final))
    waiting = counts[AutoEdit.State.NEEDS_CHOICE]
    if waiting:
        out.say(f"{waiting} recording(s) wait for a choice (some files did not import): go on or stop on their page.")
    failed = refused + counts[AutoEdit.State.FAILED] + counts[AutoEdit.State.CANCELLED]
    return _code(ok=counts[AutoEdit.State.DONE], failed=failed, waiting=waiting)


def _watch(batch: AutoEditBatch, out: Output, sleep: Callable[[float], None]) -> dict[str, int]:
    """Counts by state whenever they change, until nothing is moving; returns the last counts."""
    seen: dict[str, int] | None = None
    live = Live(console=Console(file=out.raw_words_stream()), auto_refresh=False) \
        if not out.json_mode and out.live() else None
    if live:
        live.start()
    try:
        while True:
            counts = batch_counts(batch)
            if counts != seen:
                seen = counts
                if out.json_mode:
                    out.emit({"batch": str(batch.pk), "counts": counts})
                elif live:
                    live.update(_table(counts), refresh=True)
                else:
                    out.say(_counts_words(counts))
            if not any(counts[state] for state in _ACTIVE):
                return counts
            sleep(REFRESH_SECONDS)
    except KeyboardInterrupt:
        raise CliFailure(ExitCode.INTERRUPTED, "interrupted",
                         f"Stopped watching. The batch goes on: its page shows it (batch {batch.pk}).",
                         batch=str(batch.pk)) from None
    finally:
        if live:
            live.stop()


def _counts_words(counts: dict[str, int]) -> str:
    shown = ", ".join(f"{counts[state]} {state.replace('_', ' ')}" for state in AutoEdit.State.values if counts[state])
    return f"{shown or 'nothing'} (of {counts['total']})"


def _table(counts: dict[str, int]) -> Table:
    table = Table(title=f"Auto-edits ({counts['total']})")
    table.add_column("State")
    table.add_column("Count", justify="right")
    for state, label in AutoEdit.State.choices:
        table.add_row(str(label), str(counts[state]))
    return table


def _code(*, ok: int, failed: int, waiting: int = 0) -> ExitCode:
    """All went: 0. None went and none waits for a choice: 1. Anything between: 3."""
    if not failed and not waiting:
        return ExitCode.OK
    return ExitCode.PARTIAL if ok or waiting else ExitCode.FAILED


def _user(username: str) -> Any:
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        raise CliFailure(ExitCode.BAD_INPUT, "unknown_user", f"There is no user named “{username}”.") from None


def _preset(name: str) -> PromptPreset:
    preset = PromptPreset.objects.filter(name=name, enabled=True).first()
    if preset is None:
        known = ", ".join(PromptPreset.objects.filter(enabled=True).values_list("name", flat=True)) or "none"
        raise CliFailure(ExitCode.BAD_INPUT, "unknown_preset", f"There is no preset named “{name}” (presets: {known}).")
    return preset
