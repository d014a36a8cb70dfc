"""eid.jobs's addresses, included at the site's root: `path("", include("eid.jobs.urls"))`.

The callback address is what EID_JOBS_CALLBACK_BASE is joined to; the pages are eid.jobs.pages.
"""

from django.urls import include, path

from . import callbacks

app_name = "eid_jobs"

urlpatterns = [
    path("descript/jobs/callback/<str:token>", callbacks.job_callback, name="callback"),
    path("", include("eid.jobs.pages")),
]
