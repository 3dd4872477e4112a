from django.apps import AppConfig


class GridConfig(AppConfig):
    name = "apps.grid"
    label = "grid"
    default_auto_field = "django.db.models.BigAutoField"
