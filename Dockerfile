# The partner site for production: gunicorn, settings from the environment (see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY manage.py ./
COPY partner_site ./partner_site
COPY eid ./eid
COPY templates ./templates
COPY demo ./demo
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v 0 \
    && useradd --system --home /app app && mkdir -p /app/var && chown -R app /app/var
USER app

EXPOSE 8000
# The sandbox is not copied: it never runs in production. Run the worker as a second container
# with: python manage.py db_worker   (and the sweep: python manage.py eid_sweep --every 60)
CMD ["gunicorn", "partner_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "30"]
