from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MembersConfig(AppConfig):
    name = "apps.members"
    label = "members"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.members import receivers

        receivers.connect()
        post_migrate.connect(_sync_role_groups, dispatch_uid="members-role-groups")


def _sync_role_groups(sender: AppConfig, **kwargs: object) -> None:
    # Once per migrate run, after the last app's permissions exist.
    from django.apps import apps

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if sender.label != with_models[-1].label:
        return
    from apps.members.services import roles_groups_sync

    roles_groups_sync()
