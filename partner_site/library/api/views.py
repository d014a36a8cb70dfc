"""The recordings API: storage pipelines register, list, read and delete recordings by their own id.

    GET    /api/v1/recordings                    list (owner, updated_since; cursor pages)
    POST   /api/v1/recordings/bulk               up to 1 000 at once, a result per recording
    GET    /api/v1/recordings/{external_id}      files, versions, handoffs, imports
    PUT    /api/v1/recordings/{external_id}      create or update (201 created, 200 updated/unchanged)
    DELETE /api/v1/recordings/{external_id}      the recording, its files and versions (not the objects)

Tokens (eid.api): `Authorization: Bearer <key>`. A read-only token may GET only (403
`read_only_token`). A token scoped to one user sees that user's recordings only: another user's
is 404 as if it did not exist, and a body naming another owner is 403 `owner_not_allowed`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eid import storage
from eid.api.auth import ServiceTokenAuthentication
from eid.api.errors import COMMON_CODES, WRITE_CODES, ApiError, ErrorCode, error_responses
from eid.api.idempotency import IDEMPOTENCY_CODES, idempotent
from eid.api.permissions import HasServiceToken, TokenMayWrite, token_may_act_for
from eid.api.throttling import TokenRateThrottle
from eid.media import is_supported_object
from eid.models import ReturnedExport

from .. import serializers as s
from ..models import MediaFile, Recording, RecordingVersion, VersionAsset
from . import registry
from .validation import EXTERNAL_ID_PATTERN, MAX_USERNAME, Errors, FileSpec, RecordingSpec, external_id_error
from .validation import parse_recording, text_error

MAX_BULK = 1000

# This API's own error codes (eid.api.errors lists the shared ones).
OWNER_NOT_ALLOWED = ErrorCode("owner_not_allowed", 403, "This token acts for one user only: it may not name “bob”.")
RECORDING_NOT_FOUND = ErrorCode("not_found", 404, "No recording with this external_id that this token may see.")
CONFLICT = ErrorCode("conflict", 409, "Another request changed this recording at the same moment; send it again.")
STORAGE_UNAVAILABLE = ErrorCode("storage_unavailable", 503, "Storage did not answer the checks (?verify=1). "
                                                            "Nothing was saved; try again.")
INVALID_RECORDING = ErrorCode("invalid", 400, "Some fields are not valid: tracks.1.offset.")
INVALID_QUERY = ErrorCode("invalid", 400, "Some fields are not valid: verfy.")
NOT_ACCEPTABLE = "not_acceptable"

TAG = ["recordings"]
_OFFSET_WITH_SPACE = re.compile(r" (\d\d(:?\d\d)?)$")

# "bulk" is not an external id (the ids refuse it): /recordings/bulk is the bulk endpoint, which
# answers only POST, so GET, PUT or DELETE on it is 405.
BULK_IS_RESERVED = "method_not_allowed"
EXTERNAL_ID_PARAMETER = OpenApiParameter(
    "external_id", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=EXTERNAL_ID_PATTERN,
    description="The pipeline's own id for the recording: letters, digits and . _ ~ : - (no slash), "
                "at most 200 characters. “bulk” is reserved.")
VERIFY_PARAMETER = OpenApiParameter(
    "verify", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
    description="Check every key with a HEAD first: a missing or empty object, a stored type Descript "
                "cannot import, or a size other than the one given is a 400 naming the file; nothing is saved.")

PUT_EXAMPLE = {
    "owner": "alice",
    "title": "Episode 12",
    "mix": {"key": "shows/ep12/mix.wav", "content_type": "audio/wav", "size": 48123456},
    "tracks": [
        {"key": "shows/ep12/host.wav", "name": "Host", "offset": 0},
        {"key": "shows/ep12/guest.wav", "name": "Guest", "offset": 1.5},
    ],
}
RECORDING_EXAMPLE = {
    "external_id": "ep12",
    "ref": "42",
    "source_id": "0d6f7c0e-3f5d-4a8e-9a59-5c1c8b0f2b11",
    "owner": "alice",
    "title": "Episode 12",
    "mix": {"key": "shows/ep12/mix.wav", "name": "mix.wav", "content_type": "audio/wav", "size": 48123456},
    "tracks": [
        {"key": "shows/ep12/host.wav", "name": "Host", "content_type": None, "size": None, "offset": 0.0},
        {"key": "shows/ep12/guest.wav", "name": "Guest", "content_type": None, "size": None, "offset": 1.5},
    ],
    "created_at": "2026-11-25T10:00:00Z",
    "updated_at": "2026-11-25T10:00:00Z",
}


def _invalid(errors: Errors) -> exceptions.ValidationError:
    return exceptions.ValidationError(errors)


def _only_query(request: Request, *allowed: str) -> None:
    """A misspelt parameter (ownr=, verfy=) is a 400 naming it, not a filter or check quietly skipped."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise _invalid({name: [f"Not a parameter of this address (it takes: {known})."] for name in unknown})


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw.lower() in ("", "0", "false", "no"):
        return False
    if raw.lower() in ("1", "true", "yes"):
        return True
    raise _invalid({name: ["Must be true or false (1 or 0)."]})


def _token(request: Request) -> Any:
    """The request's service token row (eid.api's ApiToken: HasServiceToken let only those through)."""
    token = request.auth
    if token is None:
        raise exceptions.NotAuthenticated()
    return token


def _may_act_for(request: Request) -> Callable[[Any], bool]:
    token = _token(request)
    return lambda user: token_may_act_for(token, user)


def _datetime(raw: str) -> datetime | None:
    """ISO 8601; naive times are UTC. An unescaped "+01:00" arrives as " 01:00" in a query string."""
    if text_error(raw) or len(raw) > 64:
        return None
    try:
        moment = parse_datetime(_OFFSET_WITH_SPACE.sub(r"+\1", raw.strip()))
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt_timezone.utc)


def _visible(request: Request) -> QuerySet[Recording]:
    """The recordings this token may see: the API's own (with an external id), of its user if scoped."""
    recordings = Recording.objects.filter(external_id__isnull=False)
    owner = _token(request).owner
    if owner is not None:
        recordings = recordings.filter(owner_id=owner.pk)
    return recordings


def _files() -> Prefetch:
    return Prefetch("files", queryset=MediaFile.objects.order_by("role", "position", "id"))


def _scoped_owner(request: Request) -> str | None:
    owner = _token(request).owner
    return owner.get_username() if owner is not None else None


def _resolve_owners(request: Request, specs: list[tuple[int, RecordingSpec]]) -> tuple[dict[str, Any], dict[int, registry.Outcome]]:
    """The owners' user rows (one query) and, per index, the error of a spec whose owner is unknown
    or not one this token may act for."""
    scoped = _scoped_owner(request)
    errors: dict[int, registry.Outcome] = {}
    names = {spec.owner for _, spec in specs}
    if scoped is not None:
        users = {scoped: _token(request).owner}
    else:
        users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names)}
    for index, spec in specs:
        if scoped is not None and spec.owner != scoped:
            # Refused whether or not that user exists: a scoped token learns nothing of other users.
            errors[index] = registry.Outcome.error(
                index, spec.external_id, OWNER_NOT_ALLOWED.code,
                f"This token acts for “{scoped}” only: it may not name another owner.", 403)
        elif spec.owner not in users:
            errors[index] = registry.Outcome.error(
                index, spec.external_id, "invalid", "Some fields are not valid: owner.", 400,
                {"owner": [f"No user named “{spec.owner}”."]})
        elif not token_may_act_for(_token(request), users[spec.owner]):
            errors[index] = registry.Outcome.error(
                index, spec.external_id, OWNER_NOT_ALLOWED.code, "This token may not act for that owner.", 403)
    return users, errors


def _file_path(spec: FileSpec) -> str:
    return "mix" if spec.role == "mix" else f"tracks.{spec.position}"


def _verify(specs: list[tuple[int, RecordingSpec]]) -> dict[int, Errors]:
    """HEAD every distinct key at once (eid.storage's pool); per index, each file's problems."""
    keys = sorted({f.key for _, spec in specs for f in spec.files})
    checks: dict[str, Future[storage.ObjectInfo]] = dict(zip(keys, storage.start_checks(keys)))
    found: dict[str, storage.ObjectInfo | str] = {}
    for key, future in checks.items():
        try:
            found[key] = future.result()
        except storage.StorageError as exc:
            if exc.kind != storage.StorageError.Kind.MISSING:
                raise ApiError(STORAGE_UNAVAILABLE.status, STORAGE_UNAVAILABLE.code,
                               "Storage did not answer the checks (?verify=1). Nothing was saved; try again.") from None
            found[key] = "Not in storage: no object has this key in the bucket."
    problems: dict[int, Errors] = {}
    for index, spec in specs:
        for f in spec.files:
            info = found[f.key]
            message: str | None = None
            field = "key"
            if isinstance(info, str):
                message = info
            elif info.size <= 0:
                message = "The object is empty."
            elif not is_supported_object(f.key, info.content_type):
                message = f"Stored as “{info.content_type}”, not a type Descript can import."
            elif f.size is not None and f.size != info.size:
                field, message = "size", f"The object holds {info.size} bytes, not {f.size}."
            if message:
                problems.setdefault(index, {})[f"{_file_path(f)}.{field}"] = [message]
    return problems


def _item_dict(outcome: registry.Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"index": outcome.index, "external_id": outcome.external_id, "result": str(outcome.result)}
    if outcome.result == registry.Result.ERROR:
        out["code"], out["detail"] = outcome.code, outcome.detail
        if outcome.errors:
            out["errors"] = outcome.errors
    else:
        assert outcome.recording is not None
        out["ref"], out["source_id"] = str(outcome.recording.pk), str(outcome.recording.source_id)
    return out


class _RecordingsAPI(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasServiceToken, TokenMayWrite]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]


class RecordingCursor(CursorPagination):
    """Ordered by when a recording was first registered (its id): rows added while a pipeline pages
    through land after its cursor, so a pass never skips or repeats one. A row changed during the
    pass is found by the next pass with updated_since."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = MAX_BULK

    def decode_cursor(self, request: Request) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise _invalid({self.cursor_query_param: ["Not a cursor this API gave: use the `next` link as it is."]})
        if cursor is not None and cursor.position is not None and not str(cursor.position).isdigit():
            raise _invalid({self.cursor_query_param: ["Not a cursor this API gave: use the `next` link as it is."]})
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
                parameter["description"] = f"Recordings per page: 1 to {self.max_page_size} ({self.page_size} by default)."
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "From the previous page's `next` link, as it is."
        return parameters

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise _invalid({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)


class RecordingList(_RecordingsAPI, generics.ListAPIView):
    serializer_class = s.RecordingOut
    pagination_class = RecordingCursor

    @extend_schema(
        operation_id="recordings_list", tags=TAG, summary="List recordings",
        description="The recordings registered through this API (or sync_bucket), oldest first, in pages "
                    "of `limit` (100 by default, at most 1 000); follow `next` until it is null. Recordings "
                    "added meanwhile come after the cursor, so a pass never skips or repeats one. A token "
                    "scoped to one user lists that user's only, whatever `owner` says.",
        parameters=[
            OpenApiParameter("owner", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False,
                             description="Only this user's (username)."),
            OpenApiParameter("updated_since", OpenApiTypes.DATETIME, OpenApiParameter.QUERY, required=False,
                             description="Only those created or changed at or after this time (ISO 8601)."),
        ],
        responses={200: s.RecordingOut(many=True),
                   **error_responses(INVALID_RECORDING, NOT_ACCEPTABLE, *COMMON_CODES)},
        examples=[OpenApiExample("A page", value={"next": "https://partner.example/api/v1/recordings?cursor=cD0xMDA%3D",
                                                  "previous": None, "results": [RECORDING_EXAMPLE]},
                                 response_only=True, status_codes=[200])],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _only_query(request, "owner", "updated_since", "cursor", "limit")
        recordings = _visible(request)
        errors: Errors = {}
        owner = request.query_params.get("owner")
        if owner is not None:
            problem = text_error(owner) or (f"At most {MAX_USERNAME} characters." if len(owner) > MAX_USERNAME else None)
            if problem:
                errors["owner"] = [problem]
            else:
                recordings = recordings.filter(owner__username=owner)
        since = request.query_params.get("updated_since")
        if since is not None:
            moment = _datetime(since)
            if moment is None:
                errors["updated_since"] = ["An ISO 8601 date and time, e.g. 2026-11-25T10:00:00Z."]
            else:
                recordings = recordings.filter(updated_at__gte=moment)
        if errors:
            raise _invalid(errors)
        page = self.paginate_queryset(recordings.select_related("owner")) or []
        files = s.files_by_recording(page)
        return self.get_paginated_response([s.recording_dict(r, files[r.pk]) for r in page])


class RecordingDetail(_RecordingsAPI):
    def _find(self, request: Request, external_id: str) -> Recording:
        if external_id_error(external_id) is None:
            recording = _visible(request).filter(external_id=external_id).select_related("owner").first()
            if recording is not None:
                return recording
        raise ApiError(404, "not_found", RECORDING_NOT_FOUND.detail)

    @extend_schema(
        operation_id="recordings_retrieve", tags=TAG, summary="One recording",
        description="Its files, its edited versions with their media keys and sizes, a summary of its "
                    "handoffs (clicks on “Edit in Descript” and import links: eid's Handoff rows) and of "
                    "the edits coming back to it.",
        parameters=[EXTERNAL_ID_PARAMETER],
        responses={200: s.RecordingDetailOut,
                   **error_responses(INVALID_QUERY, RECORDING_NOT_FOUND, NOT_ACCEPTABLE, BULK_IS_RESERVED,
                                     *COMMON_CODES)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        _only_query(request)
        recording = self._find(request, external_id)
        versions = Prefetch("versions", queryset=RecordingVersion.objects.order_by("number").prefetch_related(
            Prefetch("assets", queryset=VersionAsset.objects.order_by("kind"))))
        recording = Recording.objects.select_related("owner").prefetch_related(_files(), versions).get(pk=recording.pk)
        return Response(s.recording_detail_dict(recording))

    @extend_schema(
        operation_id="recordings_put", tags=TAG, summary="Create or update a recording",
        description=(
            "Idempotent by the pipeline's own id: the same body twice leaves one recording, answered "
            "201 `created` then 200 `unchanged`; another body is 200 `updated`. The body is the whole "
            "recording: files left out are removed (their objects stay in the bucket). The recording's "
            "`source_id` (and `ref`) never change, so edits coming back from Descript still find it. "
            "A scoped token may not name another owner (403 `owner_not_allowed`), and another user's "
            "recording is 404 to it. An unscoped token may move a recording to another owner."),
        parameters=[EXTERNAL_ID_PARAMETER, VERIFY_PARAMETER],
        request=s.RecordingPut,
        responses={
            200: OpenApiResponse(s.PutOut, description="`updated` or `unchanged`."),
            201: OpenApiResponse(s.PutOut, description="`created`."),
            **error_responses(INVALID_RECORDING, OWNER_NOT_ALLOWED, RECORDING_NOT_FOUND, CONFLICT,
                              STORAGE_UNAVAILABLE, NOT_ACCEPTABLE, BULK_IS_RESERVED, *WRITE_CODES, *COMMON_CODES),
        },
        examples=[
            OpenApiExample("Mix and two tracks", value=PUT_EXAMPLE, request_only=True),
            OpenApiExample("Created", value={"result": "created", "recording": RECORDING_EXAMPLE},
                           response_only=True, status_codes=[201]),
            OpenApiExample("Unchanged", value={"result": "unchanged", "recording": RECORDING_EXAMPLE},
                           response_only=True, status_codes=[200]),
        ],
    )
    def put(self, request: Request, external_id: str) -> Response:
        _only_query(request, "verify")
        verify = _flag(request, "verify")
        spec, errors = parse_recording(request.data, external_id=external_id, default_owner=_scoped_owner(request))
        if problem := external_id_error(external_id):
            errors["external_id"] = [problem]
        if errors or spec is None:
            raise _invalid(errors)
        users, refused = _resolve_owners(request, [(0, spec)])
        if refused:
            self._raise(refused[0])
        if verify and (problems := _verify([(0, spec)])):
            raise _invalid(problems[0])
        (outcome,) = registry.save([registry.Item(0, spec, users[spec.owner])],
                                   _may_act_for(request))
        if outcome.result == registry.Result.ERROR:
            self._raise(outcome)
        assert outcome.recording is not None
        recording = Recording.objects.select_related("owner").prefetch_related(_files()).get(pk=outcome.recording.pk)
        return Response({"result": str(outcome.result), "recording": s.recording_dict(recording)},
                        status=201 if outcome.result == registry.Result.CREATED else 200)

    @staticmethod
    def _raise(outcome: registry.Outcome) -> None:
        if outcome.errors:
            raise _invalid(outcome.errors)
        raise ApiError(outcome.status, outcome.code, outcome.detail)

    @extend_schema(
        operation_id="recordings_destroy", tags=TAG, summary="Delete a recording",
        description=(
            "Removes the recording, its file rows and its edited versions. Objects in the bucket are "
            "never deleted: they are the pipeline's. eid's history is kept: Handoff rows keep the "
            "recording's `ref` and title. Edits of it still coming back from Descript "
            "(`imports_in_flight`) are not lost: when each finishes it lands as a **new recording** "
            "(no external_id) of the user who brought it back, with the edit as its mixed file and "
            "version 1 — the same as an edit whose source is unknown."),
        parameters=[EXTERNAL_ID_PARAMETER],
        responses={200: s.DeleteOut,
                   **error_responses(INVALID_QUERY, RECORDING_NOT_FOUND, NOT_ACCEPTABLE, "read_only_token",
                                     BULK_IS_RESERVED, *COMMON_CODES)},
        examples=[OpenApiExample("Deleted, one edit still rendering", response_only=True, status_codes=[200], value={
            "external_id": "ep12", "deleted": True, "files": 3, "versions": 1,
            "imports_in_flight": [{"id": "5b0e2f44-8f7c-4d7e-a1d6-0b6e9f3c2a10", "state": "waiting",
                                   "title": "Episode 12 (edited)"}],
            "detail": "Deleted. 1 edit still coming back will land as a new recording of the user who sent it."})],
    )
    def delete(self, request: Request, external_id: str) -> Response:
        _only_query(request)
        with transaction.atomic():
            recording = self._find(request, external_id)
            recording = Recording.objects.select_for_update(of=("self",)).get(pk=recording.pk)
            ref = str(recording.pk)
            in_flight = [
                {"id": str(row.id), "state": row.state, "title": row.title}
                for row in ReturnedExport.objects.active().filter(target_ref=ref).order_by("created_at")
            ]
            files = recording.files.count()
            versions = recording.versions.count()
            recording.delete()
        detail = "Deleted. The objects in the bucket were left alone."
        if in_flight:
            detail += (f" {len(in_flight)} edit{'s' if len(in_flight) > 1 else ''} still coming back will land "
                       "as a new recording of the user who sent it.")
        return Response({"external_id": external_id, "deleted": True, "files": files, "versions": versions,
                         "imports_in_flight": in_flight, "detail": detail})


class RecordingBulk(_RecordingsAPI):
    @extend_schema(
        operation_id="recordings_bulk", tags=TAG, summary="Create or update up to 1 000 recordings",
        description=(
            "Each recording as PUT would take it, with its `external_id` in the body. Each is saved or "
            "refused on its own: one bad recording does not stop the others. The answer is 200 with one "
            "result per recording, in the request's order: `created`, `updated`, `unchanged`, or `error` "
            "with its `code` (`invalid` with field errors, `owner_not_allowed`, `not_found`, `duplicate` "
            "for an external_id given twice, `conflict`). Sending the same list twice changes nothing "
            "the second time. With an `Idempotency-Key`, a retry replays the first answer."),
        parameters=[VERIFY_PARAMETER],
        request=s.BulkIn,
        responses={200: s.BulkOut,
                   **error_responses(INVALID_RECORDING, STORAGE_UNAVAILABLE, NOT_ACCEPTABLE, *IDEMPOTENCY_CODES,
                                     *WRITE_CODES, *COMMON_CODES)},
        examples=[
            OpenApiExample("Two recordings", request_only=True, value={"recordings": [
                {"external_id": "ep12", **PUT_EXAMPLE},
                {"external_id": "ep13", "owner": "alice", "title": "Episode 13", "mix": {"key": "shows/ep13/mix.mp3"}},
            ]}),
            OpenApiExample("One saved, one refused", response_only=True, status_codes=[200], value={
                "results": [
                    {"index": 0, "external_id": "ep12", "result": "created", "ref": "42",
                     "source_id": "0d6f7c0e-3f5d-4a8e-9a59-5c1c8b0f2b11"},
                    {"index": 1, "external_id": "ep13", "result": "error", "code": "invalid",
                     "detail": "Some fields are not valid: mix.key.",
                     "errors": {"mix.key": ["Must not contain “..” or “.” path segments."]}},
                ],
                "counts": {"created": 1, "updated": 0, "unchanged": 0, "error": 1}}),
        ],
    )
    @idempotent
    def post(self, request: Request) -> Response:
        _only_query(request, "verify")
        verify = _flag(request, "verify")
        body = request.data
        items = body.get("recordings") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _invalid({"recordings": ["A list of recordings is required."]})
        if len(items) > MAX_BULK:
            raise _invalid({"recordings": [f"At most {MAX_BULK} recordings a request; send the rest in another."]})

        outcomes: dict[int, registry.Outcome] = {}
        specs: list[tuple[int, RecordingSpec]] = []
        seen: set[str] = set()
        default_owner = _scoped_owner(request)
        for index, item in enumerate(items):
            spec, errors = parse_recording(item, default_owner=default_owner)
            external_id = item.get("external_id") if isinstance(item, dict) else None
            external_id = external_id if isinstance(external_id, str) and external_id_error(external_id) is None else None
            if spec is None:
                fields = ", ".join(errors)
                outcomes[index] = registry.Outcome.error(index, external_id, "invalid",
                                                         f"Some fields are not valid: {fields}.", 400, errors)
            elif spec.external_id in seen:
                outcomes[index] = registry.Outcome.error(
                    index, external_id, "duplicate",
                    "This external_id is given earlier in the same request; only the first was saved.", 400)
            else:
                seen.add(spec.external_id)
                specs.append((index, spec))

        users, refused = _resolve_owners(request, specs)
        outcomes.update(refused)
        specs = [(i, spec) for i, spec in specs if i not in refused]
        if verify and specs:
            by_index = dict(specs)
            for index, errors in _verify(specs).items():
                fields = ", ".join(errors)
                outcomes[index] = registry.Outcome.error(index, by_index[index].external_id, "invalid",
                                                         f"Some fields are not valid: {fields}.", 400, errors)
            specs = [(i, spec) for i, spec in specs if i not in outcomes]

        saved = registry.save([registry.Item(i, spec, users[spec.owner]) for i, spec in specs],
                              _may_act_for(request))
        outcomes.update((o.index, o) for o in saved)
        results = [_item_dict(outcomes[i]) for i in range(len(items))]
        counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
        for result in results:
            counts[result["result"]] += 1
        return Response({"results": results, "counts": counts})
