from django.contrib import admin
from django.urls import include, path

from eid.api.docs import ApiDocs, ApiSchema
from partner_site.library import views as library_views

urlpatterns = [
    path("", library_views.library, name="library"),
    path("recordings/<int:recording_id>/", library_views.recording_detail, name="recording"),
    path("files/<int:file_id>/download/", library_views.download_file, name="download_file"),
    path("assets/<int:asset_id>/download/", library_views.download_asset, name="download_asset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("descript/", include("eid.urls")),
    path("api/v1/", include("eid.api.urls")),
    path("api/schema/", ApiSchema.as_view(), name="api-schema"),
    path("api/docs/", ApiDocs.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

handler404 = "partner_site.library.views.not_found"
handler500 = "partner_site.library.views.server_error"
