from django.apps import apps
from django.contrib import admin

from .models import MediaFile, Recording, RecordingVersion, VersionAsset

AUTO_EDIT_ACTIONS: list = []
if apps.is_installed("eid.jobs"):  # a batch of auto-edits of the selected recordings, each for its owner
    from eid.jobs.admin import auto_edit_action

    AUTO_EDIT_ACTIONS = [auto_edit_action(get_ref=lambda r: str(r.pk), get_user=lambda r: r.owner)]


class MediaFileInline(admin.TabularInline):
    model = MediaFile
    extra = 0


class VersionInline(admin.TabularInline):
    model = RecordingVersion
    extra = 0
    readonly_fields = ("number", "title", "duration_seconds", "created_at")
    can_delete = False


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "external_id", "source_id", "created_at", "updated_at")
    search_fields = ("title", "owner__username", "source_id", "external_id")
    readonly_fields = ("source_id", "updated_at")
    inlines = [MediaFileInline, VersionInline]
    actions = AUTO_EDIT_ACTIONS


class AssetInline(admin.TabularInline):
    model = VersionAsset
    extra = 0


@admin.register(RecordingVersion)
class RecordingVersionAdmin(admin.ModelAdmin):
    list_display = ("recording", "number", "title", "created_at")
    inlines = [AssetInline]
