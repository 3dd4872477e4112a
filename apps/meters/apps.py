from django.apps import AppConfig


class MetersConfig(AppConfig):
    name = "apps.meters"
    label = "meters"
    default_auto_field = "django.db.models.BigAutoField"
