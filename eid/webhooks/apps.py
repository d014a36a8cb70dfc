from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """eid's webhooks out: install as "eid.webhooks" (after "eid") to send them."""

    name = "eid.webhooks"
    label = "eid_webhooks"
    verbose_name = "Edit in Descript: webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps

        from . import checks  # noqa: F401  (registers the system checks)

        if apps.is_installed("eid.jobs"):  # eid.webhooks works alone: auto-edit events only with eid.jobs
            from ..jobs.signals import auto_edit_finished
            from . import auto_edit_finished as send_auto_edit_event

            auto_edit_finished.connect(send_auto_edit_event, dispatch_uid="eid.webhooks.auto_edit_finished")
