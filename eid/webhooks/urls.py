"""The webhook API's routes; eid.api.urls includes them (under /api/v1/ in the demo site)."""

from django.urls import path

from . import api

urlpatterns = [
    path("webhooks/endpoints", api.Endpoints.as_view(), name="webhook_endpoints"),
    path("webhooks/endpoints/<str:endpoint_id>", api.EndpointDetail.as_view(), name="webhook_endpoint"),
    path("webhooks/endpoints/<str:endpoint_id>/rotate-secret", api.RotateSecret.as_view(),
         name="webhook_endpoint_rotate_secret"),
    path("webhooks/endpoints/<str:endpoint_id>/deliveries", api.Deliveries.as_view(), name="webhook_deliveries"),
    path("webhooks/deliveries/<int:delivery_id>/replay", api.Replay.as_view(), name="webhook_delivery_replay"),
]
