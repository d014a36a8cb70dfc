from django.conf import settings
from django.contrib import admin
from django.contrib.auth import urls as auth_urls
from django.urls import include, path, re_path

from eid.api.docs import ApiDocs, ApiSchema
from eid.api.views import api_not_found
from partner_site.library import views as library_views

# Login, logout and password change always; password reset mails a link, so it is routed only
# when an email server is configured (EMAIL_HOST): without one it would promise a mail never sent.
_PASSWORD_RESET = {"password_reset", "password_reset_done", "password_reset_confirm", "password_reset_complete"}
account_urls = [p for p in auth_urls.urlpatterns
                if settings.EMAIL_HOST or getattr(p, "name", None) not in _PASSWORD_RESET]

urlpatterns = [
    path("", library_views.library, name="library"),
    path("recordings/<int:recording_id>/", library_views.recording_detail, name="recording"),
    path("files/<int:file_id>/download/", library_views.download_file, name="download_file"),
    path("assets/<int:asset_id>/download/", library_views.download_asset, name="download_asset"),
    path("accounts/", include(account_urls)),
    path("descript/", include("eid.urls")),
    path("", include("eid.jobs.urls")),  # auto-edits' pages and Descript's job callbacks
    # The storage pipelines' recordings API (the library's; eid.api's own endpoints sit beside it).
    path("api/v1/", include("partner_site.library.api.urls")),
    path("api/v1/", include("eid.api.urls")),
    path("api/schema/", ApiSchema.as_view(), name="api-schema"),
    path("api/docs/", ApiDocs.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    re_path(r"^api/", api_not_found),  # last: any other API address is a JSON 404
]

handler404 = "partner_site.library.views.not_found"
handler500 = "partner_site.library.views.server_error"
