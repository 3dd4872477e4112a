from django.apps import AppConfig


class MetersConfig(AppConfig):
    name = "apps.meters"
    label = "meters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.urls import register_converter

        from apps.meters.converters import SerialConverter

        register_converter(SerialConverter, "meter_serial")  # <meter_serial:serial> in the URL confs
