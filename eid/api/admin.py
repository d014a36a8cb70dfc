"""Service tokens in the admin: made here (the key shown once, on the page that follows), listed
by name and prefix, revoked with an action. The key itself is never stored or shown again."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "read_only", "owner", "created_at", "last_used_at", "revoked_at")
    list_filter = ("read_only", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    actions = ["revoke"]
    raw_id_fields = ("owner",)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[Any]:
        if obj is None:
            return ["name", "read_only", "owner"]
        return ["name", "read_only", "owner", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[Any]:
        if obj is None:
            return []
        # A token's scope is what it was made with: make a new token for another owner.
        return ["owner", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if not change:
            obj._new_key = obj.set_new_key()  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        key = getattr(obj, "_new_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        # Shown on this page and nowhere else: no message (messages may be kept in the session).
        response = TemplateResponse(request, "eid/api_token_key.html", {
            **self.admin_site.each_context(request),
            "opts": self.opts, "token": obj, "key": key, "title": f"Key for {obj.name}",
        })
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke selected tokens (they answer 401 from now on)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
