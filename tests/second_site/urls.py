from django.contrib.auth import views as auth_views
from django.urls import include, path

from second_site.podcasts import views

urlpatterns = [
    path("", views.episodes, name="episodes"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("descript/", include("eid.urls")),  # step 2
]
