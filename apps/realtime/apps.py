from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from allauth.account.signals import password_changed, password_reset, password_set
        from django.contrib.auth.signals import user_logged_out

        from apps.members.signals import api_token_revoked, membership_deactivated
        from apps.realtime.logs import server_logs_redact
        from apps.realtime.signals import (
            membership_sockets_close,
            password_sockets_reauthenticate,
            session_sockets_close,
            token_sockets_close,
        )

        server_logs_redact()
        user_logged_out.connect(session_sockets_close, dispatch_uid="realtime-session-sockets-close")
        membership_deactivated.connect(membership_sockets_close, dispatch_uid="realtime-membership-sockets-close")
        api_token_revoked.connect(token_sockets_close, dispatch_uid="realtime-token-sockets-close")
        for name, signal in (("changed", password_changed), ("set", password_set), ("reset", password_reset)):
            signal.connect(password_sockets_reauthenticate, dispatch_uid=f"realtime-reauthenticate-password-{name}")
