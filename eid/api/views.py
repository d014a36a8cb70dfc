"""eid's integration endpoints, reusable by any partner: import links, handoffs, returned exports.

Each view names its authentication, permissions and throttle itself (`TokenAPIView`), so a site
whose REST_FRAMEWORK defaults differ still gets service tokens here and nothing else.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import throttle
from ..content import get_adapter
from ..handoff import ANSWERS, HandoffFailed, record_refused_click, send_to_descript
from ..models import Handoff, ReturnedExport
from .auth import ServiceTokenAuthentication, token_of
from .errors import (
    CACHE_CONTROL_NO_STORE,
    COMMON_CODES,
    WRITE_CODES,
    ApiError,
    ErrorCode,
    error_headers,
    error_responses,
)
from .models import ApiToken
from .permissions import HasServiceToken, TokenMayWrite, token_may_act_for
from .serializers import (
    HandoffQuerySerializer,
    HandoffSerializer,
    NewImportLinkSerializer,
    ImportLinkSerializer,
    ReturnedExportQuerySerializer,
    ReturnedExportSerializer,
)
from .throttling import TokenRateThrottle

_EXAMPLE_WORDS = {"missing": "The file alice/solo.wav is not in storage.",
                  "empty": "The file alice/solo.wav is empty.",
                  "unsupported": "The file alice/notes.txt is not a type Descript can import."}
IMPORT_LINK_CODES = tuple(
    ErrorCode(kind, answer.http_status, answer.message or _EXAMPLE_WORDS.get(kind, answer.headline))
    for kind, answer in ANSWERS.items()
)
NOT_FOUND = ErrorCode("not_found", 404, "No such recording, or no such download option of it, for this user.")
NOT_YOURS = ErrorCode("permission_denied", 403, "This token acts for one user only, and not this one.")
BAD_CURSOR = ErrorCode("not_found", 404, "Invalid cursor")


class TokenAPIView(APIView):
    """Service token only, JSON only, per-token throttles."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasServiceToken, TokenMayWrite]
    throttle_classes = [TokenRateThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]


class CursorPage(CursorPagination):
    """Pages that stay put while rows are added: follow `next` to the end, keep the last cursor."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "id"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
        return parameters


class ByLastChange(CursorPage):
    ordering = "updated_at"


def _username_field() -> str:
    return get_user_model().USERNAME_FIELD


def _refused(token: ApiToken, user: Any, ref: str, option: str, why: str) -> Handoff:
    """A call refused before the adapter was asked: still a row for operators."""
    now = timezone.now()
    return Handoff.objects.create(user=user, item_ref=ref[:64], option=option[:16], started_at=now,
                                  finished_at=now, outcome=Handoff.Outcome.NOT_FOUND,
                                  detail=f"API, token {token.prefix}… ({token.name[:60]}): {why}"[:500])


class ImportLinks(TokenAPIView):
    throttle_scope = "import_links"

    @extend_schema(
        operation_id="create_import_link",
        summary="Make a one-time Descript import link (the button's click, for another front end)",
        description=(
            "Checks every file of the option in storage, signs them for Descript, asks Descript for an "
            "import link and answers it. The link is personal and single-use: send the user there at once. "
            "It is never cached or stored; each call makes a new one (so this endpoint takes no "
            "Idempotency-Key). Every call with a valid body leaves a Handoff row, refused ones too. "
            "Failures answer the same kinds the button's page shows, with `Retry-After` when Descript "
            "is rate limiting. Limits: the token's own rate (scope `import_links`) and, as for the "
            "button, each user's (`EID_THROTTLE_RATES['click']`): 429 `throttled` with `Retry-After`."
        ),
        request=NewImportLinkSerializer,
        responses={
            201: OpenApiResponse(ImportLinkSerializer, description="The link (Cache-Control: no-store)."),
            **error_responses("invalid", *COMMON_CODES, *WRITE_CODES, NOT_YOURS, NOT_FOUND, *IMPORT_LINK_CODES),
        },
        parameters=[CACHE_CONTROL_NO_STORE, *error_headers(401, 429, 503)],
        examples=[
            OpenApiExample("mixed file", value={"recording": "42", "option": "mix", "user": "alice"},
                           request_only=True),
            OpenApiExample("the link", value={"url": "https://web.descript.com/import?nonce=Vn2…", "handoff": 1234},
                           response_only=True, status_codes=["201"]),
        ],
        tags=["import links"],
    )
    def post(self, request: Request) -> Response:
        body = NewImportLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ref, option, username = body.validated_data["recording"], body.validated_data["option"], \
            body.validated_data["user"]
        token = token_of(request)
        user = get_user_model().objects.filter(**{_username_field(): username}, is_active=True).first()
        if token.owner_id is not None and (user is None or not token_may_act_for(token, user)):
            # The same answer whether that user exists or not: a scoped token learns nothing of others.
            _refused(token, user, ref, option, f"may not act for user {username!r} (answered 403)")
            raise ApiError(403, NOT_YOURS.code, NOT_YOURS.detail)
        if user is None:
            _refused(token, None, ref, option, f"no active user {username!r} (answered 400)")
            raise ValidationError({"user": ["No active user with this username."]})
        # The button's own per-user budget: one user cannot spend the partner's Descript rate through the API either.
        verdict = throttle.check("click", user.pk)
        if not verdict.allowed:
            raise ApiError(429, "throttled", "Too many import links for this user in a short time. "
                           f"Expected available in {verdict.retry_after} seconds.",
                           headers={"Retry-After": str(verdict.retry_after)})
        content = get_adapter().get_content(user, ref, option)
        if content is None or not content.importable:
            record_refused_click(user, ref, option)
            raise ApiError(404, NOT_FOUND.code, NOT_FOUND.detail)
        try:
            url, handoff = send_to_descript(user, content)
        except HandoffFailed as failure:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
            raise ApiError(failure.http_status, str(failure.kind), failure.message, headers=headers) from None
        response = Response({"url": url, "handoff": handoff.pk}, status=201)
        add_never_cache_headers(response)  # no-store: the link is one-time and personal
        return response


class ScopedList(ListAPIView, TokenAPIView):
    """A list of eid's rows, only the token's owner's when it has one; filtered by `since`."""

    pagination_class = CursorPage
    query_serializer: type = HandoffQuerySerializer
    since_field = ""

    def get_queryset(self) -> QuerySet[Any]:
        # A plain dict, not the QueryDict: "?state=" is then a blank value refused, not a filter left out.
        query = self.query_serializer(data=self.request.query_params.dict())
        # A misspelt filter must not quietly answer everything.
        known = {*query.fields, "cursor", "page_size"}
        unknown = sorted(set(self.request.query_params) - known)
        if unknown:
            raise ValidationError({name: [f"Unknown query parameter. Known: {', '.join(sorted(known))}."]
                                   for name in unknown})
        query.is_valid(raise_exception=True)
        rows = self.base_queryset()
        token = token_of(self.request)
        if token.owner_id is not None:
            rows = rows.filter(user_id=token.owner_id)
        filters = dict(query.validated_data)
        if "since" in filters:
            rows = rows.filter(**{f"{self.since_field}__gte": filters.pop("since")})
        return rows.filter(**filters).select_related("user")

    def base_queryset(self) -> QuerySet[Any]:
        raise NotImplementedError


class Handoffs(ScopedList):
    serializer_class = HandoffSerializer
    query_serializer = HandoffQuerySerializer
    since_field = "started_at"
    pagination_class = CursorPage  # by id, the insertion order: a click that finished late is not skipped

    def base_queryset(self) -> QuerySet[Any]:
        return Handoff.objects.all()

    @extend_schema(
        operation_id="list_handoffs",
        summary="Clicks and API calls on import links, oldest first",
        description="Every Handoff row: what was sent, the outcome and Descript's answer. A token with an "
                    "owner sees that user's rows only. Cursor pages: follow `next`; keep the last one to "
                    "resume later without gaps or repeats.",
        parameters=[HandoffQuerySerializer, *error_headers(401, 429)],
        responses={200: HandoffSerializer(many=True), **error_responses("invalid", BAD_CURSOR, *COMMON_CODES)},
        tags=["handoffs"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ReturnedExports(ScopedList):
    serializer_class = ReturnedExportSerializer
    query_serializer = ReturnedExportQuerySerializer
    since_field = "updated_at"
    pagination_class = ByLastChange  # a changed import comes round again, after the cursor

    def base_queryset(self) -> QuerySet[Any]:
        return ReturnedExport.objects.all()

    @extend_schema(
        operation_id="list_returned_exports",
        summary="Edits coming back from Descript, by last change",
        description="Every import of an edit (ReturnedExport): its state, where it landed (recording and "
                    "version) or why it failed. Never Descript's media links. A token with an owner sees "
                    "that user's imports only. Ordered by last change: an import that changes comes round "
                    "again after your cursor.",
        parameters=[ReturnedExportQuerySerializer, *error_headers(401, 429)],
        responses={200: ReturnedExportSerializer(many=True),
                   **error_responses("invalid", BAD_CURSOR, *COMMON_CODES)},
        tags=["returned exports"],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)




@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def api_not_found(request: Request, *args: Any, **kwargs: Any) -> Response:
    """Route it last under the API's prefix: an unknown API address answers JSON, not the site's page."""
    raise ApiError(404, "not_found", "There is no such address in this API. See /api/docs/.")
