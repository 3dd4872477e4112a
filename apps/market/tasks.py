"""Thin Celery entry points of the market."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.common import clock
from apps.market.services import auto_orders_run, intervals_clear_due

logger = logging.getLogger(__name__)


@shared_task(name="apps.market.tasks.market_clear_due", ignore_result=True)
def market_clear_due() -> int:
    """Clear every interval whose gate has closed. Safe twice and at once: each interval is
    cleared under its row lock and a unique result, so a second run finds nothing to do."""
    results = intervals_clear_due(now=clock.now())
    for result in results:
        logger.info("cleared %s: price %s volume %s Wh", result.interval, result.price, result.volume_wh)
    return len(results)


@shared_task(name="apps.market.tasks.autotrade_run", ignore_result=True)
def autotrade_run() -> dict[str, int]:
    """Place, amend or cancel automated orders for the next intervals (idempotent)."""
    report = auto_orders_run(now=clock.now())
    logger.info("automated trading: %s", report)
    return vars(report)
