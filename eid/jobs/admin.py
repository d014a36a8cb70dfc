"""Operators' view of auto-edits: presets (editable), batches with counts, every auto-edit with its
Descript jobs, and the actions cancel / go on / stop.

Rows are shown, never edited: the machine (eid.jobs.machine) is the only writer of an auto-edit.
Nothing here shows a token, a callback token (only its digest is stored, and not shown either),
Descript's download_url or any other signed link: a step's `result` is shown without them.

A partner's own admin starts batches with `auto_edit_action(get_ref=..., get_user=...)`, which
speaks in eid's terms (an item's ref and its owner), so eid needs nothing of the partner's models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import machine
from .forms import AutoEditForm
from .models import AutoEdit, AutoEditBatch, DescriptBudget, JobStep, PromptPreset

# Keys of Descript's answers that hold signed or private links, and what such links carry.
_SECRET_KEYS = {"download_url", "callback_url", "url", "upload_url", "signed_url", "presigned_url"}
_SIGNED_MARKERS = ("X-Amz-", "Signature=", "signature=", "token=", "Expires=")


def without_links(value: Any) -> Any:
    """A Descript result without signed links: the step rows should not hold them, and if one
    slipped in, the admin still does not show it."""
    if isinstance(value, dict):
        return {k: ("(hidden)" if k in _SECRET_KEYS else without_links(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [without_links(v) for v in value]
    if isinstance(value, str) and any(marker in value for marker in _SIGNED_MARKERS):
        return "(hidden)"
    return value


@admin.register(PromptPreset)
class PromptPresetAdmin(admin.ModelAdmin):
    list_display = ("name", "short_prompt", "media_type", "resolution", "position", "enabled")
    list_editable = ("position", "enabled")
    list_filter = ("enabled", "media_type")
    search_fields = ("name", "prompt")

    @admin.display(description="prompt")
    def short_prompt(self, obj: PromptPreset) -> str:
        return obj.prompt if len(obj.prompt) <= 80 else obj.prompt[:79] + "…"


class JobStepInline(admin.TabularInline):
    model = JobStep
    extra = 0
    can_delete = False
    fields = ("kind", "state", "job_id", "progress", "shown_result", "error_kind", "error", "cost",
              "submit_started_at", "submitted_at", "last_polled_at", "next_poll_at", "finished_at")
    readonly_fields = fields

    @admin.display(description="progress")
    def progress(self, obj: JobStep) -> str:
        percent = "" if obj.progress_percent is None else f" ({obj.progress_percent}%)"
        return f"{obj.progress_label}{percent}" or "-"

    @admin.display(description="result")
    def shown_result(self, obj: JobStep) -> str:
        if not obj.result:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(without_links(obj.result), indent=1, ensure_ascii=False))

    @admin.display(description="calls / polls (unchanged) / callbacks")
    def cost(self, obj: JobStep) -> str:
        return f"{obj.calls} / {obj.polls} ({obj.polls_unchanged}) / {obj.callbacks}"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _tell(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, skipped: int, what: str, why: str) -> None:
    if done:
        modeladmin.message_user(request, f"{done} auto-edit(s) {what}.", messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, f"{skipped} left as they were: {why}", messages.WARNING)


@admin.register(AutoEdit)
class AutoEditAdmin(admin.ModelAdmin):
    list_display = ("created_at", "item", "user", "state", "batch_link", "via", "version_number", "reason",
                    "finished_at")
    list_filter = ("state", "via", "media_type")
    search_fields = ("item_ref", "item_title", "user__username", "project_id", "reason", "=id")
    list_select_related = ("user", "batch")
    date_hierarchy = "created_at"
    fields = ("item", "user", "option", "source_id", "state", "reason", "failure_kind", "failed_files_list",
              "batch_link", "via", "requested_by", "prompt", "preset", "media_type", "resolution",
              "project_name", "project_id", "project_link", "composition_id", "agent_summary", "share_link",
              "result_ref", "version_number", "export", "cancel_requested_at", "attempts", "heartbeat_at",
              "next_action_at", "created_at", "started_at", "updated_at", "finished_at")
    readonly_fields = fields
    inlines = [JobStepInline]
    actions = ["cancel_auto_edits", "go_on_auto_edits", "stop_auto_edits"]

    @admin.display(description="recording", ordering="item_title")
    def item(self, obj: AutoEdit) -> str:
        return obj.item_title or obj.item_ref

    @admin.display(description="batch", ordering="batch")
    def batch_link(self, obj: AutoEdit) -> str:
        if not obj.batch_id:
            return "-"
        url = reverse("admin:eid_jobs_autoeditbatch_change", args=[obj.batch_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.batch))

    @admin.display(description="project at Descript")
    def project_link(self, obj: AutoEdit) -> str:
        if not obj.project_url:
            return "-"
        return format_html('<a href="{}" rel="noopener" target="_blank">{}</a>', obj.project_url, obj.project_url)

    @admin.display(description="share page")
    def share_link(self, obj: AutoEdit) -> str:
        if not obj.share_url:
            return "-"
        return format_html('<a href="{}" rel="noopener" target="_blank">{}</a>', obj.share_url, obj.share_url)

    @admin.display(description="files that did not import")
    def failed_files_list(self, obj: AutoEdit) -> str:
        if not obj.failed_files:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join(
            "", "<li><strong>{}</strong>: {}</li>", ((name, why) for name, why in obj.failed_files.items())))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from a recording, the API, the command line or a partner's admin action

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the machine is the only writer; operators act with the actions

    def has_act_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eid_jobs.change_autoedit")

    @admin.action(description="Cancel (and cancel the Descript job)", permissions=["act"])
    def cancel_auto_edits(self, request: HttpRequest, queryset: QuerySet[AutoEdit]) -> None:
        results = [machine.cancel(ae, by=f"admin:{request.user.get_username()}") for ae in queryset]
        _tell(self, request, results.count(True), results.count(False), "cancelled", "they had already finished.")

    @admin.action(description="Go on with the files that imported (partial imports)", permissions=["act"])
    def go_on_auto_edits(self, request: HttpRequest, queryset: QuerySet[AutoEdit]) -> None:
        results = [machine.go_on(ae) for ae in queryset]
        _tell(self, request, results.count(True), results.count(False), "going on with the files that imported",
              "they were not waiting for a choice.")

    @admin.action(description="Stop (partial imports)", permissions=["act"])
    def stop_auto_edits(self, request: HttpRequest, queryset: QuerySet[AutoEdit]) -> None:
        results = [machine.stop(ae) for ae in queryset]
        _tell(self, request, results.count(True), results.count(False), "stopped",
              "they were not waiting for a choice.")


class AutoEditInline(admin.TabularInline):
    model = AutoEdit
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("item_title", "item_ref", "user", "state", "reason", "version_number", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AutoEditBatch)
class AutoEditBatchAdmin(admin.ModelAdmin):
    list_display = ("__str__", "via", "requested_by", "counts", "created_at", "finished_at")
    list_filter = ("via",)
    search_fields = ("name", "requested_by", "prompt", "=id")
    fields = ("name", "via", "requested_by", "prompt", "preset", "media_type", "resolution", "max_in_flight",
              "counts", "page_link", "created_at", "finished_at")
    readonly_fields = fields
    inlines = [AutoEditInline]

    @admin.display(description="auto-edits by state")
    def counts(self, obj: AutoEditBatch) -> str:
        labels = dict(AutoEdit.State.choices)
        found = {state: n for state, n in machine.batch_counts(obj).items() if n}
        return ", ".join(f"{labels.get(state, state)}: {n}" for state, n in found.items()) or "none"

    @admin.display(description="live page")
    def page_link(self, obj: AutoEditBatch) -> str:
        url = reverse("eid_jobs:batch", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, url)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DescriptBudget)
class DescriptBudgetAdmin(admin.ModelAdmin):
    """Each Descript token's shared rate budget: is Descript holding us off, and how often it has.

    A token is named by the first characters of its SHA-256 digest, never by the token."""

    list_display = ("token", "holding_off_until", "calls_in_window", "throttled_total", "updated_at")
    fields = ("token", "holding_off_until", "window_started_at", "calls_in_window", "throttled_total", "updated_at")
    readonly_fields = fields

    @admin.display(description="token (digest)")
    def token(self, obj: DescriptBudget) -> str:
        return f"sha256:{obj.token_digest[:12]}…"

    @admin.display(description="Descript said wait until")
    def holding_off_until(self, obj: DescriptBudget) -> Any:
        return obj.not_before or "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- A partner's admin action that starts a batch -----------------------------------------------


class BatchForm(AutoEditForm):
    """The intermediate page: what every selected item's auto-edit should do."""

    name = forms.CharField(max_length=200, required=False, help_text="To find the batch again (optional).")
    max_in_flight = forms.IntegerField(min_value=1, max_value=1000, required=False,
                                       help_text="Auto-edits of this batch at Descript at once (empty: the default).")


AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet[Any]], HttpResponse | None]


def auto_edit_action(*, get_ref: Callable[[Any], str], get_user: Callable[[Any], Any],
                     description: str = "Edit automatically with Descript (a batch)") -> AdminAction:
    """An admin action for a partner's own model: an intermediate form (a preset or a prompt, how
    to publish), then one batch of auto-edits of the selected items, each for its owner.

    `get_ref(obj)` is the item's id as the site's content adapter names it; `get_user(obj)` the
    user the auto-edit is for (the item's owner). Wire it in the partner's ModelAdmin::

        actions = [auto_edit_action(get_ref=lambda r: str(r.pk), get_user=lambda r: r.owner)]
    """

    def start_auto_edits(modeladmin: admin.ModelAdmin, request: HttpRequest,
                         queryset: QuerySet[Any]) -> HttpResponse | None:
        form = BatchForm(request.POST if "start_auto_edits" in request.POST else None,
                         auto_id="ae_%s")
        if form.is_bound and form.is_valid():
            items = [(get_user(obj), str(get_ref(obj))) for obj in queryset]
            try:
                batch, results = machine.start_batch(
                    items=items, via=AutoEditBatch.Via.ADMIN, requested_by=request.user.get_username(),
                    name=form.cleaned_data.get("name") or "", max_in_flight=form.cleaned_data.get("max_in_flight"),
                    **form.start_arguments())
            except machine.AutoEditRefused as refusal:  # the batch as a whole (no prompt, not configured)
                form.add_error(None, refusal.reason)
            else:
                refused = [(ref, r) for ref, r in results if isinstance(r, machine.AutoEditRefused)]
                started = len(results) - len(refused)
                modeladmin.message_user(request, f"{started} auto-edit(s) started in {batch}.", messages.SUCCESS)
                if refused:
                    words = "; ".join(f"{ref}: {r.reason}" for ref, r in refused[:10])
                    modeladmin.message_user(request, f"{len(refused)} not started: {words}", messages.WARNING)
                return HttpResponseRedirect(reverse("admin:eid_jobs_autoeditbatch_change", args=[batch.pk]))
        opts = modeladmin.model._meta
        return TemplateResponse(request, "eid_jobs/admin/start_batch.html", {
            **modeladmin.admin_site.each_context(request),
            "title": "Edit automatically with Descript",
            "form": form,
            "objects": list(queryset[:50]),
            "count": queryset.count(),
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "action": "start_auto_edits",
            "select_across": request.POST.get("select_across", "0"),
            "opts": opts,
        })

    start_auto_edits.short_description = description  # type: ignore[attr-defined]
    start_auto_edits.allowed_permissions = ("change",)  # type: ignore[attr-defined]
    return start_auto_edits
