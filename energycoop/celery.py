"""The Celery app (`energycoop.celery:app`); the beat schedule lives in schedules.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energycoop.settings.dev")

app = Celery("energycoop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from energycoop.schedules import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
