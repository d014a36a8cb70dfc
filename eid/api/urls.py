"""eid's API endpoints; a site includes them under its API prefix (here /api/v1/)."""

from django.urls import path

from . import views

app_name = "eid_api"
urlpatterns = [
    path("import-links", views.ImportLinks.as_view(), name="import_links"),
    path("handoffs", views.Handoffs.as_view(), name="handoffs"),
    path("returned-exports", views.ReturnedExports.as_view(), name="returned_exports"),
]
