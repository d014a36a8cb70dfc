"""ASGI entry point: gunicorn runs it with uvicorn workers (see the Dockerfile and README)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partner_site.settings")

application = get_asgi_application()
