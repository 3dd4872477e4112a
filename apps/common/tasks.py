"""Thin Celery entry points of the shared kernel."""

from celery import shared_task

from apps.common.services import heartbeat_record


@shared_task(name="apps.common.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Sent by beat, run by a worker: a row that proves both are alive."""
    heartbeat_record(name="worker")
