"""The webhook API for storage pipelines (service tokens, eid.api):

    POST   /api/v1/webhooks/endpoints                      register; the answer holds the secret, once
    GET    /api/v1/webhooks/endpoints                      list
    GET    /api/v1/webhooks/endpoints/{id}                 one
    DELETE /api/v1/webhooks/endpoints/{id}                 delete (its deliveries with it)
    POST   /api/v1/webhooks/endpoints/{id}/rotate-secret   a new secret, once; the old one signs too for a day
    GET    /api/v1/webhooks/endpoints/{id}/deliveries      the delivery log, newest first
    POST   /api/v1/webhooks/deliveries/{id}/replay         send a delivery again, same webhook-id

A token scoped to one user registers endpoints that hear only about that user's items, and sees
only those: any other endpoint or delivery is a 404, as if it did not exist. An unscoped token
acts for every user: its endpoints hear about everyone's items unless it names an `owner`.
A read-only token may only read. Secrets appear in the answers that make them and nowhere else.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import netsafe
from ..api.auth import ServiceTokenAuthentication, token_of
from ..api.errors import COMMON_CODES, WRITE_CODES, ApiError, ErrorCode, error_headers, error_responses
from ..api.models import ApiToken
from ..api.permissions import HasServiceToken, TokenMayWrite
from ..api.throttling import TokenRateThrottle
from .delivery import ReplayRefused, check_endpoint_url, replay
from .models import DEFAULT_EVENT_TYPES, EVENT_TYPES, WebhookDelivery, WebhookEndpoint

TAG = ["webhooks"]
ENDPOINT_NOT_FOUND = ErrorCode("not_found", 404, "No webhook endpoint with this id that this token may see.")
DELIVERY_NOT_FOUND = ErrorCode("not_found", 404, "No webhook delivery with this id that this token may see.")
OWNER_NOT_ALLOWED = ErrorCode("owner_not_allowed", 403, "This token acts for one user only: it may not name “bob”.")
REPLAY_REFUSED = ErrorCode("replay_refused", 409, "The endpoint is disabled: enable it first.")
INVALID_ENDPOINT = ErrorCode("invalid", 400, "Some fields are not valid: url.")
NO_STORE = OpenApiParameter("Cache-Control", str, OpenApiParameter.HEADER, response=[200, 201],
                            description="no-store: the answer holds a secret and is never cached.")

ENDPOINT_EXAMPLE = {
    "id": "4f6c2d0e-8a51-4a0b-9a7e-0f1c2b3d4e5f",
    "url": "https://pipeline.example.com/hooks/descript",
    "description": "Publishing pipeline",
    "event_types": ["version.created", "returned_export.failed"],
    "owner": None,
    "enabled": True,
    "disabled_reason": "",
    "disabled_at": None,
    "rotating": False,
    "previous_secret_expires_at": None,
    "created_at": "2026-11-25T10:00:00Z",
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# --- serializers -----------------------------------------------------------------------------------


class EventTypesField(serializers.ListField):
    """A list of event types; unknown ones are one message for the field (not one per item)."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):  # per-item errors
                raise serializers.ValidationError(
                    [f"Unknown event type. Known: {', '.join(EVENT_TYPES)}."]) from None
            raise


class NewEndpointSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2048, help_text="https on a public address (on port 443), unless the "
                                                          "operator allowed a private range for receivers.")
    event_types = EventTypesField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)), required=False, allow_empty=False, max_length=len(EVENT_TYPES),
        help_text=f"What to send here; default {DEFAULT_EVENT_TYPES}. handoff.failed only when asked.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    owner = serializers.CharField(max_length=150, required=False, allow_null=True, default=None,
                                  help_text="Only events about this user's items. A token scoped to one user "
                                            "always registers for that user.")

    def validate_url(self, value: str) -> str:
        try:
            check_endpoint_url(value)
        except netsafe.UnsafeURL as exc:
            raise serializers.ValidationError(f"Deliveries could not go there: {exc.reason}") from None
        return value.strip()

    def validate_event_types(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # in order, once each


class EndpointSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)), read_only=True)
    rotating = serializers.BooleanField(read_only=True, help_text="Two secrets sign each delivery (a rotation).")

    class Meta:
        model = WebhookEndpoint
        # Never the secrets.
        fields = ["id", "url", "description", "event_types", "owner", "enabled", "disabled_reason", "disabled_at",
                  "rotating", "previous_secret_expires_at", "created_at"]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    secret = serializers.SerializerMethodField(help_text="The signing secret, shown in this answer only. "
                                                         "Keep it: it is never shown again.")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj: WebhookEndpoint) -> str:
        return str(self.context["secret"])


class AttemptSerializer(serializers.Serializer):
    attempt = serializers.IntegerField()
    at = serializers.DateTimeField()
    status = serializers.IntegerField(allow_null=True, help_text="HTTP status; null: no answer (see error).")
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    payload = serializers.SerializerMethodField(help_text="The event, exactly as sent (its JSON).")
    history = AttemptSerializer(many=True, read_only=True, help_text="The last attempts, oldest first.")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event_type", "webhook_id", "state", "attempts", "replays", "next_attempt_at",
                  "last_attempt_at", "last_status", "last_latency_ms", "last_error", "history", "created_at",
                  "finished_at", "payload"]
        read_only_fields = fields

    def get_payload(self, obj: WebhookDelivery) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(obj.payload)
        return value


class DeliveryQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=WebhookDelivery.State.choices, required=False)


# --- views ----------------------------------------------------------------------------------------------


class TokenView(APIView):
    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [HasServiceToken, TokenMayWrite]
    throttle_classes = [TokenRateThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    allowed_query: frozenset[str] = frozenset()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # the token first: 401 and 403 before any 400
        unknown = sorted(set(request.query_params) - self.allowed_query)
        if unknown:  # a misspelt filter must not quietly list everything
            raise serializers.ValidationError({name or "(no name)": ["Unknown query parameter."] for name in unknown})


def endpoints_for(token: ApiToken) -> QuerySet[WebhookEndpoint]:
    rows = WebhookEndpoint.objects.select_related("owner")
    return rows.filter(owner_id=token.owner_id) if token.owner_id is not None else rows


def _endpoint(token: ApiToken, endpoint_id: Any) -> WebhookEndpoint:
    try:
        key = uuid.UUID(str(endpoint_id))
    except ValueError:
        raise ApiError(404, ENDPOINT_NOT_FOUND.code, ENDPOINT_NOT_FOUND.detail) from None
    endpoint = endpoints_for(token).filter(pk=key).first()
    if endpoint is None:
        raise ApiError(404, ENDPOINT_NOT_FOUND.code, ENDPOINT_NOT_FOUND.detail)
    return endpoint


def _with_secret(endpoint: WebhookEndpoint, secret: str, status: int) -> Response:
    response = Response(EndpointWithSecretSerializer(endpoint, context={"secret": secret}).data, status=status)
    add_never_cache_headers(response)  # no-store: also keeps it out of the Idempotency-Key store
    return response


class Pages(CursorPagination):
    """Cursor pages; a page_size that is not a whole number is a 400, not silently the default."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not raw.strip().lstrip("-").isdigit():
            raise serializers.ValidationError({"page_size": ["A whole number (at most 200)."]})
        return int(super().get_page_size(request) or self.page_size)


class NewestFirst(Pages):
    ordering = "-id"


class OldestFirst(Pages):
    ordering = "created_at"


ENDPOINT_ID = OpenApiParameter("endpoint_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
DELIVERY_ID = OpenApiParameter("delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class Endpoints(generics.ListAPIView, TokenView):
    serializer_class = EndpointSerializer
    pagination_class = OldestFirst
    allowed_query = frozenset({"cursor", "page_size"})

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return endpoints_for(token_of(self.request))

    @extend_schema(operation_id="list_webhook_endpoints", summary="Webhook endpoints this token may see",
                   responses={200: EndpointSerializer(many=True),
                              **error_responses("invalid", ErrorCode("not_found", 404, "Invalid cursor"),
                                                *COMMON_CODES)},
                   parameters=error_headers(401, 429), tags=TAG)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="register_webhook_endpoint",
        summary="Register a webhook endpoint (the answer holds its signing secret, once)",
        description=(
            "Deliveries are POSTs signed per Standard Webhooks (headers webhook-id, webhook-timestamp, "
            "webhook-signature; verify with the standardwebhooks package and the `secret` in this answer, "
            "which is never shown again). A 2xx answer is success; 408, 429 (Retry-After honoured), 5xx, "
            "timeouts (10 s) and connection errors are retried after 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, "
            "3 h, 6 h and 12 h (each +/-20%), then given up; 410 Gone disables the endpoint; any other "
            "answer fails the delivery without retry (replay it when fixed). This endpoint takes no "
            "Idempotency-Key: its answer holds a secret, which is never stored."
        ),
        request=NewEndpointSerializer,
        responses={201: OpenApiResponse(EndpointWithSecretSerializer, description="The endpoint and its secret."),
                   **error_responses(INVALID_ENDPOINT, OWNER_NOT_ALLOWED, *COMMON_CODES, *WRITE_CODES)},
        parameters=[NO_STORE, *error_headers(401, 429)],
        examples=[
            OpenApiExample("register", request_only=True, value={
                "url": "https://pipeline.example.com/hooks/descript",
                "event_types": ["version.created", "returned_export.failed"], "description": "Publishing pipeline"}),
            OpenApiExample("registered", response_only=True, status_codes=["201"],
                           value={**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}),
        ],
        tags=TAG,
    )
    def post(self, request: Request) -> Response:
        body = NewEndpointSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token = token_of(request)
        owner = token.owner
        named = body.validated_data.get("owner")
        if named:
            user = get_user_model().objects.filter(username=named).first()
            if token.owner_id is not None and (user is None or user.pk != token.owner_id):
                raise ApiError(403, OWNER_NOT_ALLOWED.code, f"This token acts for one user only: it may not name {named!r}.")
            if user is None:
                raise ApiError(400, "invalid", "Some fields are not valid: owner.")
            owner = user
        endpoint = WebhookEndpoint.objects.create(
            url=body.validated_data["url"],
            event_types=body.validated_data.get("event_types") or list(DEFAULT_EVENT_TYPES),
            description=body.validated_data.get("description", ""),
            owner=owner,
            created_by=f"token:{token.prefix}… ({token.name})"[:200],
        )
        return _with_secret(endpoint, endpoint.secret, 201)


class EndpointDetail(TokenView):
    @extend_schema(operation_id="get_webhook_endpoint", summary="One webhook endpoint", parameters=[
        ENDPOINT_ID, *error_headers(401, 429)],
        responses={200: EndpointSerializer, **error_responses("invalid", ENDPOINT_NOT_FOUND, *COMMON_CODES)}, tags=TAG)
    def get(self, request: Request, endpoint_id: str) -> Response:
        return Response(EndpointSerializer(_endpoint(token_of(request), endpoint_id)).data)

    @extend_schema(operation_id="delete_webhook_endpoint", summary="Delete a webhook endpoint and its delivery log",
                   description="Nothing more is sent to it, pending retries included.",
                   parameters=[ENDPOINT_ID, *error_headers(401, 429)],
                   responses={204: OpenApiResponse(description="Deleted."),
                              **error_responses("invalid", ENDPOINT_NOT_FOUND, *COMMON_CODES, "read_only_token")}, tags=TAG)
    def delete(self, request: Request, endpoint_id: str) -> Response:
        _endpoint(token_of(request), endpoint_id).delete()
        return Response(status=204)


class RotateSecret(TokenView):
    @extend_schema(
        operation_id="rotate_webhook_secret",
        summary="A new signing secret (in this answer only); the previous one keeps signing for a day",
        description="Until previous_secret_expires_at every delivery carries two signatures, one per secret, "
                    "so the receiver may switch to the new secret at any time before then.",
        request=None, parameters=[ENDPOINT_ID, NO_STORE, *error_headers(401, 429)],
        responses={200: EndpointWithSecretSerializer,
                   **error_responses("invalid", ENDPOINT_NOT_FOUND, *COMMON_CODES, "read_only_token")},
        tags=TAG,
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = _endpoint(token_of(request), endpoint_id)
        secret = endpoint.rotate_secret()
        return _with_secret(endpoint, secret, 200)


class Deliveries(generics.ListAPIView, TokenView):
    serializer_class = DeliverySerializer
    pagination_class = NewestFirst
    allowed_query = frozenset({"cursor", "page_size", "state"})

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        endpoint = _endpoint(token_of(self.request), self.kwargs["endpoint_id"])
        query = DeliveryQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return endpoint.deliveries.filter(**query.validated_data)

    @extend_schema(operation_id="list_webhook_deliveries", summary="An endpoint's delivery log, newest first",
                   description="Each delivery: its state (pending, succeeded, failed, given_up), attempts, the "
                               "last status, latency and error, the next try, the last attempts, and the "
                               "event as sent.",
                   parameters=[ENDPOINT_ID, DeliveryQuerySerializer, *error_headers(401, 429)],
                   responses={200: DeliverySerializer(many=True),
                              **error_responses("invalid", ENDPOINT_NOT_FOUND,
                                                ErrorCode("not_found", 404, "Invalid cursor"), *COMMON_CODES)},
                   tags=TAG)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class Replay(TokenView):
    @extend_schema(
        operation_id="replay_webhook_delivery",
        summary="Send a delivery again: same webhook-id and body, a fresh retry schedule",
        description="Receivers that drop duplicate webhook-ids will drop it if they already handled it.",
        request=None, parameters=[DELIVERY_ID, *error_headers(401, 429)],
        responses={202: DeliverySerializer,
                   **error_responses("invalid", DELIVERY_NOT_FOUND, REPLAY_REFUSED, *COMMON_CODES, "read_only_token")},
        tags=TAG,
    )
    def post(self, request: Request, delivery_id: int) -> Response:
        token = token_of(request)
        delivery = WebhookDelivery.objects.filter(pk=delivery_id, endpoint__in=endpoints_for(token)).first()
        if delivery is None:
            raise ApiError(404, DELIVERY_NOT_FOUND.code, DELIVERY_NOT_FOUND.detail)
        try:
            replay(delivery)
        except ReplayRefused as exc:
            raise ApiError(409, REPLAY_REFUSED.code, str(exc)) from None
        return Response(DeliverySerializer(delivery).data, status=202)
