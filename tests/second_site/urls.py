from django.contrib.auth import views as auth_views
from django.urls import include, path

from second_site.podcasts import views

urlpatterns = [
    path("", views.episodes, name="episodes"),
    path("episodes/<slug:slug>/", views.episode, name="episode"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("descript/", include("eid.urls")),  # step 2
    path("", include("eid.jobs.urls")),  # step 6: the auto-edit pages and Descript's job callbacks
]
