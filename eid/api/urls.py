"""eid's API endpoints; a site includes them under its API prefix (here /api/v1/)."""

from django.apps import apps
from django.urls import path

from . import views

app_name = "eid_api"
urlpatterns = [
    path("import-links", views.ImportLinks.as_view(), name="import_links"),
    path("handoffs", views.Handoffs.as_view(), name="handoffs"),
    path("returned-exports", views.ReturnedExports.as_view(), name="returned_exports"),
]

if apps.is_installed("eid.webhooks"):  # webhooks out: endpoints, delivery logs, replays (eid.webhooks.api)
    from ..webhooks.urls import urlpatterns as webhook_urlpatterns

    urlpatterns += webhook_urlpatterns

if apps.is_installed("eid.jobs"):  # auto-edits: start batches, follow them, cancel, choose (eid.jobs.api)
    from ..jobs.api import urlpatterns as auto_edit_urlpatterns

    urlpatterns += auto_edit_urlpatterns
