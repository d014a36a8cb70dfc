"""The browsable API docs (Swagger UI) under a strict Content-Security-Policy.

Swagger UI's files come from drf-spectacular-sidecar through our own static files, the start-up
script from a separate URL (drf-spectacular's split view), and the page has no inline style or
script (our template, not drf-spectacular's): `default-src 'self'` needs no exception.
"""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


class ApiSchema(SpectacularAPIView):
    """The OpenAPI 3 document: public, no session or token needed to read it."""

    authentication_classes: list[type] = []


class ApiDocs(SpectacularSwaggerSplitView):
    template_name = "eid/api_docs.html"
    authentication_classes: list[type] = []
