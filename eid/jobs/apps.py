from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Descript's jobs API and auto-edits: install as "eid.jobs" (after "eid")."""

    name = "eid.jobs"
    label = "eid_jobs"
    verbose_name = "Edit in Descript: auto-edits"
    default_auto_field = "django.db.models.BigAutoField"
