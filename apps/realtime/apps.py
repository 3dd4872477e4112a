from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.realtime.logs import server_logs_redact

        server_logs_redact()
