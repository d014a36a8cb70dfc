"""The recordings API's routes, included under /api/v1/ by the site's urls."""

from django.urls import path

from . import views

urlpatterns = [
    path("recordings", views.RecordingList.as_view(), name="api-recordings"),
    # Before the catch-all below: "bulk" is not an external id (validation reserves it).
    path("recordings/bulk", views.RecordingBulk.as_view(), name="api-recordings-bulk"),
    # path: an id with a slash reaches the view (a JSON 400/404), instead of no route at all.
    path("recordings/<path:external_id>", views.RecordingDetail.as_view(), name="api-recording"),
]
