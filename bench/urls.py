"""The site's URLs plus the floor view (bench/proxyview.py), for bench/settings.py."""

from django.urls import path

from partner_site.urls import handler404, handler500  # noqa: F401  (the site's own error pages)
from partner_site.urls import urlpatterns as site_urlpatterns

from .proxyview import floor

urlpatterns = [
    *site_urlpatterns,
    path("bench/floor/<str:ref>/<slug:option>/", floor, name="bench_floor"),
]
