from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """eid's webhooks out: install as "eid.webhooks" (after "eid") to send them."""

    name = "eid.webhooks"
    label = "eid_webhooks"
    verbose_name = "Edit in Descript: webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
