from django.conf import settings


def descript(request) -> dict:
    return {"DESCRIPT_HELP_URL": settings.DESCRIPT_HELP_URL}
