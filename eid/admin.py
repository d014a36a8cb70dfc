"""Operators' view of every click and every import. Descript's links and upload ids stay hidden."""

from __future__ import annotations

from django.contrib import admin, messages

from .models import Handoff, ReturnedExport
from .tasks import retry_import


@admin.register(Handoff)
class HandoffAdmin(admin.ModelAdmin):
    list_display = ("started_at", "user", "item_title", "item_ref", "option", "outcome", "upstream_status",
                    "upstream_error_code", "upstream_latency_ms", "file_count", "total_bytes")
    list_filter = ("outcome", "option", "upstream_status")
    search_fields = ("user__username", "item_title", "item_ref", "source_id", "upstream_error_code", "detail")
    date_hierarchy = "started_at"
    list_select_related = ("user",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record of what happened; not editable


@admin.register(ReturnedExport)
class ReturnedExportAdmin(admin.ModelAdmin):
    list_display = ("created_at", "title", "user", "match", "state", "checks", "attempts", "result_title",
                    "version_number", "reason")
    list_filter = ("state", "match")
    search_fields = ("title", "share_id", "user__username", "source_tag")
    list_select_related = ("user",)
    exclude = ("media_links", "upload", "lease_token")
    readonly_fields = [f.name for f in ReturnedExport._meta.fields if f.name not in ("media_links", "upload", "lease_token")]
    actions = ["retry_failed"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the worker owns these rows; operators retry with the action

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("eid.change_returnedexport")

    @admin.action(description="Retry the selected failed imports", permissions=["retry"])
    def retry_failed(self, request, queryset) -> None:
        count = sum(retry_import(export, operator=True) for export in queryset.filter(state=ReturnedExport.State.FAILED))
        self.message_user(request, f"{count} import(s) queued again.", messages.SUCCESS)
