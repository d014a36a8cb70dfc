"""The auto-edit pages' addresses; eid.jobs.urls includes them (app_name "eid_jobs")."""

from django.urls import path

from . import views

urlpatterns: list = [
    path("auto-edits/start/<str:ref>/", views.start, name="start"),
    path("auto-edits/<uuid:auto_edit_id>/", views.auto_edit_page, name="auto_edit"),
    path("auto-edits/<uuid:auto_edit_id>/status", views.auto_edit_status, name="auto_edit_status"),
    path("auto-edits/<uuid:auto_edit_id>/cancel/", views.cancel, name="cancel"),
    path("auto-edits/<uuid:auto_edit_id>/go-on/", views.go_on, name="go_on"),
    path("auto-edits/<uuid:auto_edit_id>/stop/", views.stop, name="stop"),
    path("auto-edits/batches/<uuid:batch_id>/", views.batch_page, name="batch"),
    path("auto-edits/batches/<uuid:batch_id>/status", views.batch_status, name="batch_status"),
]
