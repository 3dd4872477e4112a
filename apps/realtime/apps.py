from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from apps.realtime.logs import server_logs_redact
        from apps.realtime.signals import session_sockets_close

        server_logs_redact()
        user_logged_out.connect(session_sockets_close, dispatch_uid="realtime-session-sockets-close")
