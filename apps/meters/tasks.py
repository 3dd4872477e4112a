"""Thin Celery entry points of the meter-data app."""

from celery import shared_task

from apps.meters.services import interval_energy_estimate_quiet, rollups_drain


@shared_task(name="apps.meters.tasks.rollups_refresh", ignore_result=True)
def rollups_refresh_task(limit: int = 5_000) -> int:
    """Drain the rollup backlog until it is empty, a batch per transaction (idempotent;
    concurrent runs take turns on a lock)."""
    return rollups_drain(limit=limit)


@shared_task(name="apps.meters.tasks.estimate_quiet_meters", ignore_result=True)
def estimate_quiet_meters_task() -> int:
    """Estimate intervals of meters silent for over an hour (idempotent: fills only what is empty)."""
    return interval_energy_estimate_quiet()
