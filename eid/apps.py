from django.apps import AppConfig


class EidConfig(AppConfig):
    name = "eid"
    verbose_name = "Edit in Descript"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
