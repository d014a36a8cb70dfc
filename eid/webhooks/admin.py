"""Operators' view: endpoints (the secret shown once, rotation, enable/disable) and the delivery log.

Secrets never appear in lists or forms: a new endpoint's secret, and a rotated one, are shown
once on a page of their own (not through messages, which are kept in the session or a cookie).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import netsafe
from .delivery import ReplayRefused, check_endpoint_url, replay
from .models import DEFAULT_EVENT_TYPES, EventType, WebhookDelivery, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2048, assume_scheme="https",
                         help_text="https on a public address (or inside EID_WEBHOOK_ALLOWED_NETWORKS).")
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple,
                                            initial=DEFAULT_EVENT_TYPES)

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "owner", "enabled")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_endpoint_url(url)
        except netsafe.UnsafeURL as exc:
            raise forms.ValidationError(f"Deliveries could not go there: {exc.reason}") from None
        return url


def _secret_page(request: HttpRequest, endpoint: WebhookEndpoint, secret: str, heading: str) -> HttpResponse:
    changelist = reverse("admin:eid_webhooks_webhookendpoint_changelist")
    response = TemplateResponse(request, "eid_webhooks/admin/secret_once.html", {
        **admin.site.each_context(request),
        "title": heading,
        "heading": heading,
        "endpoint_label": str(endpoint),
        "secret": secret,
        "rotating": endpoint.rotating,
        "previous_until": endpoint.previous_secret_expires_at,
        "changelist_url": changelist,
        "continue_url": reverse("admin:eid_webhooks_webhookendpoint_change", args=[endpoint.pk]),
    })
    response["Cache-Control"] = "no-store"
    return response


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("shown_url", "description", "owner", "events", "enabled", "disabled_reason", "signing",
                    "delivery_log", "created_at")
    list_filter = ("enabled",)
    search_fields = ("url", "description", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("signing", "disabled_reason", "disabled_at", "created_by", "created_at", "delivery_log")
    actions = ["rotate_secret", "end_rotation", "enable_endpoints", "disable_endpoints"]

    @admin.display(description="URL")
    def shown_url(self, obj: WebhookEndpoint) -> str:
        return netsafe.redact_url(obj.url)  # no query string: it may carry a token of the receiver's

    @admin.display(description="events")
    def events(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types or [])

    @admin.display(description="signing")
    def signing(self, obj: WebhookEndpoint) -> str:
        if obj.pk and obj.rotating:
            until = obj.previous_secret_expires_at
            return f"two secrets (rotating) until {until:%Y-%m-%d %H:%M} UTC" if until else "two secrets (rotating)"
        return "one secret"

    @admin.display(description="deliveries")
    def delivery_log(self, obj: WebhookEndpoint) -> str:
        if not obj.pk:
            return ""
        url = reverse("admin:eid_webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">delivery log</a>', url)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = f"admin:{request.user.get_username()}"[:200]
        if change and "enabled" in form.changed_data:
            if obj.enabled:
                obj.disabled_reason, obj.disabled_at = "", None
            else:
                obj.disabled_reason = f"Disabled by {request.user.get_username()}."
                obj.disabled_at = timezone.now()
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None) -> HttpResponse:
        return _secret_page(request, obj, obj.secret, "Webhook endpoint added: its signing secret")

    @admin.action(description="Rotate the signing secret (shows the new one once)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Rotate one endpoint at a time: its new secret is shown once.", messages.WARNING)
            return None
        endpoint = queryset.get()
        secret = endpoint.rotate_secret()
        return _secret_page(request, endpoint, secret, "Signing secret rotated: the new secret")

    @admin.action(description="End the rotation: stop signing with the previous secret", permissions=["change"])
    def end_rotation(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint.end_rotation()
        self.message_user(request, f"{queryset.count()} endpoint(s) now sign with their current secret only.")

    @admin.action(description="Enable the selected endpoints", permissions=["change"])
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint.enable()
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled. Replay what they missed from the "
                                   "delivery log.")

    @admin.action(description="Disable the selected endpoints", permissions=["change"])
    def disable_endpoints(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.filter(enabled=True):
            endpoint.disable(f"Disabled by {request.user.get_username()}.")
        self.message_user(request, "Disabled: no new deliveries, and pending ones fail when their turn comes.")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "endpoint_link", "event_type", "webhook_id", "state", "attempts", "last_status",
                    "last_latency_ms", "next_attempt_at", "last_error")
    list_filter = ("state", "event_type", ("endpoint", admin.RelatedOnlyFieldListFilter))
    search_fields = ("webhook_id", "last_error")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    fields = ("endpoint_link", "event_type", "webhook_id", "state", "attempts", "replays", "next_attempt_at",
              "last_attempt_at", "last_status", "last_latency_ms", "last_error", "attempt_log", "shown_payload",
              "created_at", "finished_at")
    readonly_fields = fields
    actions = ["replay_deliveries"]

    @admin.display(description="endpoint")
    def endpoint_link(self, obj: WebhookDelivery) -> str:
        url = reverse("admin:eid_webhooks_webhookendpoint_change", args=[obj.endpoint_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.endpoint))

    @admin.display(description="payload")
    def shown_payload(self, obj: WebhookDelivery) -> str:
        try:
            text = json.dumps(json.loads(obj.payload), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.payload
        return format_html("<pre>{}</pre>", text)

    @admin.display(description="attempts (newest last)")
    def attempt_log(self, obj: WebhookDelivery) -> str:
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (e.get("attempt", ""), e.get("at", ""), e.get("status") or "-", e.get("latency_ms", ""),
             e.get("error", ""), e.get("next_attempt_at") or "-")
            for e in obj.history or []
        ))
        return format_html("<table><tr><th>#</th><th>at</th><th>status</th><th>ms</th><th>error</th>"
                           "<th>next try</th></tr>{}</table>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a record of what was sent; operators replay with the action

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("eid_webhooks.change_webhookdelivery")

    @admin.action(description="Replay the selected deliveries (same webhook-id)", permissions=["replay"])
    def replay_deliveries(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        done, refused = 0, []
        for delivery in queryset.select_related("endpoint"):
            try:
                replay(delivery)
                done += 1
            except ReplayRefused as exc:
                refused.append(f"{delivery.webhook_id}: {exc}")
        if done:
            self.message_user(request, f"{done} delivery(ies) queued again, each with its own webhook-id.",
                              messages.SUCCESS)
        if refused:
            self.message_user(request, "Not replayed: " + "; ".join(refused[:10]), messages.WARNING)
