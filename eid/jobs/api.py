"""The auto-edits API for pipelines: start a batch, follow it, cancel, choose after a partial import.

Routed by eid.api.urls (under /api/v1/ here) when eid.jobs is installed. Thin: each view asks
eid.jobs.machine and answers an AutoEditRefused as the API's error shape with its plain words.
Tokens as everywhere in the API: a token with an owner acts for that user only (another user's
auto-edit reads as a 404, naming another user in a batch is refused for that recording),
read-only tokens read only.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from ..api.auth import token_of
from ..api.errors import COMMON_CODES, WRITE_CODES, ApiError, ErrorCode, error_headers, error_responses
from ..api.idempotency import HEADER as IDEMPOTENCY_HEADER
from ..api.idempotency import IDEMPOTENCY_CODES, idempotent
from ..api.models import ApiToken
from ..api.permissions import token_may_act_for
from ..api.views import CursorPage, ScopedList, TokenAPIView
from . import machine
from .models import AutoEdit, AutoEditBatch, PromptPreset
from .serializers import (
    AutoEditQuerySerializer,
    AutoEditRowSerializer,
    AutoEditSerializer,
    BatchSerializer,
    BatchStartedSerializer,
    NewAutoEditsSerializer,
)
from .starting import BatchItem

TAG = ["auto-edits"]
AUTO_EDIT_ID = OpenApiParameter("auto_edit_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
BATCH_ID = OpenApiParameter("batch_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
AUTO_EDIT_NOT_FOUND = ErrorCode("not_found", 404, "No such auto-edit for this token.")
BATCH_NOT_FOUND = ErrorCode("not_found", 404, "No such batch for this token.")
BAD_CURSOR = ErrorCode("not_found", 404, "Invalid cursor")
KEY_REQUIRED = ErrorCode("idempotency_key_required", 400,
                         "Send an Idempotency-Key header (a UUID of yours): a retry must not start the batch twice.")
TOO_LATE = ErrorCode("not_possible", 409, "This auto-edit can no longer be cancelled. It is now: Done.")
# Refusals of the whole batch (eid.jobs.machine.AutoEditRefused), before anything is written.
BATCH_REFUSALS = (
    ErrorCode("no_prompt", 400, "Choose a preset or tell Underlord what to do."),
    ErrorCode("too_long", 400, "The instructions are too long (4211 characters; at most 4000)."),
    ErrorCode("not_configured", 503, "Automatic edits are not set up on this site yet. Please try again later."),
)
NOT_YOURS_WORDS = "This token acts for one user only, and not this one."


def _uuid_or_404(value: Any, error: ErrorCode) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ApiError(404, error.code, error.detail) from None


def _auto_edits_for(token: ApiToken) -> QuerySet[AutoEdit]:
    rows = AutoEdit.objects.select_related("user", "preset")
    return rows.filter(user_id=token.owner_id) if token.owner_id is not None else rows


def _auto_edit(request: Request, auto_edit_id: Any) -> AutoEdit:
    key = _uuid_or_404(auto_edit_id, AUTO_EDIT_NOT_FOUND)
    ae = _auto_edits_for(token_of(request)).filter(pk=key).first()
    if ae is None:
        raise ApiError(404, AUTO_EDIT_NOT_FOUND.code, AUTO_EDIT_NOT_FOUND.detail)
    return ae


def _url(request: Request, name: str, pk: Any) -> str:
    return request.build_absolute_uri(reverse(name, args=[str(pk)]))


def _described(request: Request, ae: AutoEdit) -> dict[str, Any]:
    return {**machine.describe(ae), "url": _url(request, "eid_api:auto_edit", ae.pk),
            "user": ae.user.get_username()}


def _requested_by(token: ApiToken) -> str:
    return f"token:{token.prefix}… ({token.name})"[:200]


class AutoEdits(ScopedList):
    serializer_class = AutoEditRowSerializer
    query_serializer = AutoEditQuerySerializer
    since_field = "updated_at"

    class Pages(CursorPage):
        ordering = "created_at"

    pagination_class = Pages

    def base_queryset(self) -> QuerySet[Any]:
        return AutoEdit.objects.all()

    @extend_schema(
        operation_id="list_auto_edits", summary="Auto-edits, oldest first",
        description="Every auto-edit this token may see (a token with an owner: that user's), filtered by state, "
                    "batch, recording or last change (`since`). Cursor pages: follow `next`.",
        parameters=[AutoEditQuerySerializer, *error_headers(401, 429)],
        responses={200: AutoEditRowSerializer(many=True), **error_responses("invalid", BAD_CURSOR, *COMMON_CODES)},
        tags=TAG,
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="start_auto_edits",
        summary="Start auto-edits of recordings (a batch): import, Underlord, publish, back as a new version",
        description=(
            "Each recording is imported into Descript, edited by the Underlord agent as the prompt (or the "
            "preset) says, published, and brought back as a new version of itself, for its user. They run "
            "as one batch, a few at a time (`max_in_flight`); one recording that is refused or fails does not "
            "stop the others. The answer is 201 with the batch and one result per recording, in the request's "
            "order: `started` with the auto-edit's id, or `refused` with a code and plain words "
            "(`not_found`, `not_importable`, `already_running`, `permission_denied`, `unknown_user`). "
            "Each recording may name the download option to send (`option`); without one, the multitrack "
            "option is sent if the recording has one. "
            "Refusals of the whole request (no prompt, not set up) answer an error and start nothing. "
            "An `Idempotency-Key` is required: a retry with the same key and body answers the same batch. "
            "Hear the end of each on webhooks (`auto_edit.completed`, `auto_edit.failed`) or poll "
            "GET /auto-edits/{id}."
        ),
        request=NewAutoEditsSerializer,
        responses={201: OpenApiResponse(BatchStartedSerializer, description="The batch (Location: its address)."),
                   **error_responses("invalid", KEY_REQUIRED, *BATCH_REFUSALS, *IDEMPOTENCY_CODES, *WRITE_CODES,
                                     *COMMON_CODES)},
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=True,
                                     description="Required. A unique value of yours for this request (a UUID): "
                                                 "a retry with the same key and body answers the same batch."),
                    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[201],
                                     description="The batch's address."),
                    *error_headers(401, 429, 503)],
        examples=[
            OpenApiExample("two recordings, a preset", request_only=True, value={
                "recordings": [{"recording": "42", "user": "alice"}, {"recording": "43", "user": "alice"}],
                "preset": "Clean up", "media_type": "audio", "name": "Tonight's episodes"}),
            OpenApiExample("the mixed file of one, the tracks of another", request_only=True, value={
                "recordings": [{"recording": "42", "user": "alice", "option": "mix"},
                               {"recording": "43", "user": "alice", "option": "tracks"}],
                "prompt": "Remove filler words and long pauses"}),
            OpenApiExample("one started, one refused", response_only=True, status_codes=["201"], value={
                "batch": "0d6f7c0e-3f5d-4a8e-9a59-5c1c8b0f2b11",
                "url": "https://studio.example.com/api/v1/auto-edit-batches/0d6f7c0e-3f5d-4a8e-9a59-5c1c8b0f2b11",
                "started": 1, "refused": 1,
                "results": [
                    {"recording": "42", "user": "alice", "result": "started",
                     "auto_edit": "5b3a7c1e-2f4d-4e8a-8b59-1c2c8b0f2b22",
                     "url": "https://studio.example.com/api/v1/auto-edits/5b3a7c1e-2f4d-4e8a-8b59-1c2c8b0f2b22"},
                    {"recording": "43", "user": "alice", "result": "refused", "code": "not_importable",
                     "detail": "This recording has no files Descript can import."},
                ]}),
        ],
        tags=TAG,
    )
    @idempotent
    def post(self, request: Request) -> Response:
        if not request.headers.get(IDEMPOTENCY_HEADER):
            raise ApiError(400, KEY_REQUIRED.code, KEY_REQUIRED.detail)
        body = NewAutoEditsSerializer(data=request.data)
        if not body.is_valid():
            raise ValidationError(flat_errors(body.errors))
        data = body.validated_data
        preset = None
        if data.get("preset"):
            preset = PromptPreset.objects.filter(name=data["preset"], enabled=True).first()
            if preset is None:
                raise ValidationError({"preset": ["No enabled preset has this name."]})
        token = token_of(request)
        items = data["recordings"]
        refused, users = _resolve_users(token, items)
        to_start = [BatchItem(users[i], item["recording"], item.get("option") or None)
                    for i, item in enumerate(items) if i not in refused]
        try:
            batch, outcomes = machine.start_batch(
                items=to_start, prompt=data.get("prompt") or None, preset=preset,
                media_type=data.get("media_type"), resolution=data.get("resolution"), via=AutoEditBatch.Via.API,
                requested_by=_requested_by(token), name=data.get("name") or "",
                max_in_flight=data.get("max_in_flight"))
        except machine.AutoEditRefused as refusal:
            raise ApiError(refusal.http_status, str(refusal.kind), refusal.reason) from None
        started = iter(outcomes)
        results = []
        for index, item in enumerate(items):
            result: dict[str, Any] = {"recording": item["recording"], "user": item["user"]}
            if index in refused:
                code, words = refused[index]
                result.update(result="refused", code=code, detail=words)
            else:
                _ref, outcome = next(started)
                if isinstance(outcome, machine.AutoEditRefused):
                    result.update(result="refused", code=str(outcome.kind), detail=outcome.reason)
                else:
                    result.update(result="started", auto_edit=str(outcome.pk),
                                  url=_url(request, "eid_api:auto_edit", outcome.pk))
            results.append(result)
        url = _url(request, "eid_api:auto_edit_batch", batch.pk)
        count = sum(1 for r in results if r["result"] == "started")
        return Response({"batch": str(batch.pk), "url": url, "started": count, "refused": len(results) - count,
                         "results": results}, status=201, headers={"Location": url})


def flat_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as the API's shape: one list of words per field, named by its path
    ("recordings.2.user"), as the recordings API names "mix.key"."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for name, value in errors.items():
            flat.update(flat_errors(value, f"{prefix}.{name}" if prefix else str(name)))
    elif isinstance(errors, list) and errors and all(not isinstance(e, (dict, list)) for e in errors):
        flat[prefix or "non_field_errors"] = [str(e) for e in errors]
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            if value:
                flat.update(flat_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    elif errors:
        flat[prefix or "non_field_errors"] = [str(errors)]
    return flat


def _resolve_users(token: ApiToken, items: list[dict[str, Any]]) -> tuple[dict[int, tuple[str, str]], dict[int, Any]]:
    """Each item's user by username; refused items (index -> (code, words)) for unknown users and,
    for a token with an owner, anyone else (the same answer whether that user exists or not)."""
    User = get_user_model()
    names = {item["user"] for item in items}
    found = {u.get_username(): u for u in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names},
                                                               is_active=True)}
    refused: dict[int, tuple[str, str]] = {}
    users: dict[int, Any] = {}
    for index, item in enumerate(items):
        user = found.get(item["user"])
        if token.owner_id is not None and (user is None or not token_may_act_for(token, user)):
            refused[index] = ("permission_denied", NOT_YOURS_WORDS)
        elif user is None:
            refused[index] = ("unknown_user", "No active user has this username.")
        else:
            users[index] = user
    return refused, users


class AutoEditDetail(TokenAPIView):
    @extend_schema(operation_id="get_auto_edit", summary="One auto-edit, step by step",
                   description="Its state, each Descript job's progress (label and percent), Underlord's summary, "
                               "the project's link, and the new version once home; or why it failed. A partial "
                               "import waits for a choice (`can_choose`): POST go-on or stop.",
                   parameters=[AUTO_EDIT_ID, *error_headers(401, 429)],
                   responses={200: AutoEditSerializer, **error_responses(AUTO_EDIT_NOT_FOUND, *COMMON_CODES)},
                   tags=TAG)
    def get(self, request: Request, auto_edit_id: str) -> Response:
        return Response(_described(request, _auto_edit(request, auto_edit_id)))


class _Act(TokenAPIView):
    """A POST that asks the machine for one thing; 409 in plain words when it is too late."""

    too_late = ""

    def act(self, ae: AutoEdit, token: ApiToken) -> bool:
        raise NotImplementedError

    def post(self, request: Request, auto_edit_id: str) -> Response:
        ae = _auto_edit(request, auto_edit_id)
        if not self.act(ae, token_of(request)):
            ae.refresh_from_db()
            raise ApiError(409, TOO_LATE.code, f"{self.too_late} It is now: {ae.get_state_display()}.")
        ae.refresh_from_db()
        return Response(_described(request, ae))


def _act_schema(operation_id: str, summary: str, description: str) -> Any:
    return extend_schema(operation_id=operation_id, summary=summary, description=description, request=None,
                         parameters=[AUTO_EDIT_ID, *error_headers(401, 429)],
                         responses={200: AutoEditSerializer,
                                    **error_responses(AUTO_EDIT_NOT_FOUND, TOO_LATE, *WRITE_CODES, *COMMON_CODES)},
                         tags=TAG)


class Cancel(_Act):
    too_late = "This auto-edit can no longer be cancelled."

    def act(self, ae: AutoEdit, token: ApiToken) -> bool:
        return machine.cancel(ae, by=_requested_by(token))

    @_act_schema("cancel_auto_edit", "Cancel an auto-edit (and its Descript job)",
                 "At any step before the edit comes home; the running Descript job is cancelled too. "
                 "409 `not_possible` when it has finished.")
    def post(self, request: Request, auto_edit_id: str) -> Response:
        return super().post(request, auto_edit_id)


class GoOn(_Act):
    too_late = "This auto-edit is not waiting for a choice."

    def act(self, ae: AutoEdit, token: ApiToken) -> bool:
        return machine.go_on(ae)

    @_act_schema("go_on_auto_edit", "Go on with the files that imported (a partial import)",
                 "When some files did not import (`can_choose`, `failed_files` says why): edit the rest.")
    def post(self, request: Request, auto_edit_id: str) -> Response:
        return super().post(request, auto_edit_id)


class Stop(_Act):
    too_late = "This auto-edit is not waiting for a choice."

    def act(self, ae: AutoEdit, token: ApiToken) -> bool:
        return machine.stop(ae)

    @_act_schema("stop_auto_edit", "Stop after a partial import",
                 "When some files did not import (`can_choose`): end the auto-edit (cancelled).")
    def post(self, request: Request, auto_edit_id: str) -> Response:
        return super().post(request, auto_edit_id)


class BatchDetail(TokenAPIView):
    @extend_schema(operation_id="get_auto_edit_batch", summary="A batch: counts by state and its auto-edits",
                   description="A token with an owner sees only that user's auto-edits of the batch (and a batch "
                               "with none of them is a 404); the counts are of what it sees.",
                   parameters=[BATCH_ID, *error_headers(401, 429)],
                   responses={200: BatchSerializer, **error_responses(BATCH_NOT_FOUND, *COMMON_CODES)}, tags=TAG)
    def get(self, request: Request, batch_id: str) -> Response:
        key = _uuid_or_404(batch_id, BATCH_NOT_FOUND)
        token = token_of(request)
        batch = AutoEditBatch.objects.select_related("preset").filter(pk=key).first()
        rows = _auto_edits_for(token).filter(batch_id=key)
        if batch is None or (token.owner_id is not None and not rows.exists()):
            raise ApiError(404, BATCH_NOT_FOUND.code, BATCH_NOT_FOUND.detail)
        if token.owner_id is None:
            counts = machine.batch_counts(batch)
        else:
            counts = {state: 0 for state in AutoEdit.State.values}
            for row in rows.values("state").annotate(n=Count("id")).order_by():
                counts[row["state"]] = row["n"]
            counts["total"] = sum(counts.values())
        items = [{"id": str(ae.pk), "url": _url(request, "eid_api:auto_edit", ae.pk), "recording": ae.item_ref,
                  "title": ae.item_title, "user": ae.user.get_username(), "state": ae.state, "reason": ae.reason,
                  "version": ae.version_number} for ae in rows.order_by("created_at", "id")]
        return Response({
            "id": str(batch.pk), "name": batch.name, "via": batch.via, "requested_by": batch.requested_by,
            "prompt": batch.prompt, "preset": batch.preset.name if batch.preset else None,
            "media_type": batch.media_type, "resolution": batch.resolution or None,
            "max_in_flight": batch.max_in_flight, "created_at": batch.created_at, "finished_at": batch.finished_at,
            "counts": counts, "items": items,
        })


urlpatterns = [
    path("auto-edits", AutoEdits.as_view(), name="auto_edits"),
    path("auto-edits/<str:auto_edit_id>", AutoEditDetail.as_view(), name="auto_edit"),
    path("auto-edits/<str:auto_edit_id>/cancel", Cancel.as_view(), name="auto_edit_cancel"),
    path("auto-edits/<str:auto_edit_id>/go-on", GoOn.as_view(), name="auto_edit_go_on"),
    path("auto-edits/<str:auto_edit_id>/stop", Stop.as_view(), name="auto_edit_stop"),
    path("auto-edit-batches/<str:batch_id>", BatchDetail.as_view(), name="auto_edit_batch"),
]
