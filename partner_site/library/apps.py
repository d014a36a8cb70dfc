from django.apps import AppConfig


class LibraryConfig(AppConfig):
    name = "partner_site.library"
    label = "library"
    verbose_name = "Recordings library"
