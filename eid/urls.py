from django.urls import path

from . import views

app_name = "eid"
urlpatterns = [
    path("import/new", views.landing, name="landing"),
    path("imports/<uuid:export_id>/", views.import_status, name="import_status"),
    path("imports/<uuid:export_id>/retry/", views.import_retry, name="import_retry"),
    path("edit/<str:ref>/<slug:option>/", views.edit_in_descript, name="edit"),
]
