from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The top of the stack: what composes many apps (home page, ``/api/v1/me/``, onboarding,
    the demo community, the meter simulator and the market replay). Nothing imports it."""

    name = "apps.portal"
    label = "portal"
    default_auto_field = "django.db.models.BigAutoField"
