from django.conf import settings
from django.http import HttpRequest


def coop(request: HttpRequest) -> dict[str, object]:
    return {"COOP_NAME": settings.COOP_NAME, "CURRENCY": settings.CURRENCY}
