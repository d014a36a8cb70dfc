from django.apps import AppConfig


class EidApiConfig(AppConfig):
    name = "eid.api"
    label = "eid_api"
    verbose_name = "Edit in Descript: API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the service token with drf-spectacular)
