"""Thin Celery entry points of the meter-data app."""

from celery import shared_task

from apps.meters.services import rollups_refresh


@shared_task(name="apps.meters.tasks.rollups_refresh", ignore_result=True)
def rollups_refresh_task(limit: int = 5_000) -> int:
    """Drain the rollup backlog (idempotent; concurrent runs take turns on a lock)."""
    return rollups_refresh(limit=limit)
