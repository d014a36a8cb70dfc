# The partner site for production: uvicorn (ASGI), settings from the environment (see README).
#
# The base image is pinned to an exact tag (CPython 3.11.7, the version the suite runs on, on
# Debian 12 slim). A tag can still be re-pushed upstream; `python:3.11.7-slim-bookworm@sha256:...`
# would pin the exact bytes, but no registry or Docker engine was reachable where this file was
# written, so the digest could not be looked up, and a made-up one would only break the build.
# Add it with: docker buildx imagetools inspect python:3.11.7-slim-bookworm
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Production's pins only: no moto, pytest, playwright or the sandbox's werkzeug
# (those are in requirements-dev.txt, for `make test` and `make demo`).
COPY requirements.txt .
RUN pip install -r requirements.txt

# The site and nothing else: neither sandbox/ (the offline Descript) nor demo/ (its seed_demo
# command lives in the demo app, which only demo.settings and the test settings install).
COPY manage.py ./
COPY partner_site ./partner_site
COPY eid ./eid
COPY templates ./templates
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v 0 \
    && useradd --system --home /app app && mkdir -p /app/var && chown -R app /app/var
USER app

EXPOSE 8000
# The same image runs the workers and the sweep (docker-compose.yml): on Redis
# `python manage.py rqworker --with-scheduler default` and `python manage.py rqcron eid.rq_cron`;
# on the database queue `python manage.py db_worker` and `python manage.py eid_sweep --every 60`.
# uvicorn, one process per core (WEB_CONCURRENCY). Under ASGI every request gets its own thread, so a
# request waiting on Descript never holds a thread another user needs; --limit-concurrency caps
# what one process takes on (503 beyond it) and the database pool caps connections (README).
ENV WEB_CONCURRENCY=2
CMD ["sh", "-c", "exec uvicorn partner_site.asgi:application --host 0.0.0.0 --port 8000 --workers \"$WEB_CONCURRENCY\" --limit-concurrency 1000 --backlog 2048 --timeout-graceful-shutdown 30 --proxy-headers --no-access-log"]
