from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Descript's jobs API and auto-edits: install as "eid.jobs" (after "eid")."""

    name = "eid.jobs"
    label = "eid_jobs"
    verbose_name = "Edit in Descript: auto-edits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Hears the way back's finished imports (an auto-edit copying home), in every process.
        from . import checks, homecoming  # noqa: F401  (checks registers the system checks)
