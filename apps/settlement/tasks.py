"""Thin Celery entry points of settlement."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.common import clock
from apps.settlement.services import corrections_run, intervals_settle_due

logger = logging.getLogger(__name__)


@shared_task(name="apps.settlement.tasks.settle_due", ignore_result=True)
def settle_due() -> int:
    """Settle what is due, then book corrections. Safe twice and at once (unique interval row,
    idempotent ledger keys, hash comparison)."""
    now = clock.now()
    reports = intervals_settle_due(now=now)
    corrections = corrections_run(now=now)
    for report in reports:
        logger.info("settled %s: %s members (%s estimated)", report.interval_start, report.members, report.estimated)
    for report in corrections:
        logger.info("corrected %s: %s members", report.interval_start, report.corrected)
    return len(reports) + len(corrections)
