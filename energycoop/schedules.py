"""Every periodic task, as code: each entry says why it runs and how often.

Each entry carries ``expires`` so that a backlog after an outage does not replay stale runs;
every task listed here is idempotent and safe to run twice at once.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab
from django.conf import settings


def beat_schedule() -> dict[str, dict[str, Any]]:
    return {
        # Liveness of the worker and beat, shown to operators on the status page and used by
        # the smoke test of `make run`. Cheap (one upsert); every 30 s is enough to notice a
        # stopped worker within a minute.
        "common-heartbeat": {
            "task": "apps.common.tasks.heartbeat",
            "schedule": float(settings.HEARTBEAT_SECONDS),
            "options": {"expires": settings.HEARTBEAT_SECONDS},
        },
        # Meters: bring hourly and daily rollups up to date with the interval energy that the
        # last readings changed (the backlog the ingest leaves). Every 15 s keeps dashboards
        # within seconds of the meters; each run drains one batch in one transaction, drains
        # take turns on a lock and delete what they did, so an overlap does nothing twice; a
        # stale run expires, the next one picks the backlog up.
        "meters-rollups-refresh": {
            "task": "apps.meters.tasks.rollups_refresh",
            "schedule": 15.0,
            "options": {"expires": 15},
        },
        # Meters: estimate the intervals of meters that have been silent for over an hour, so
        # that settlement at its cutoff finds every main meter's energy (flagged estimated; the
        # readings replace it when they come). Every 5 minutes is well inside the hour; it only
        # fills empty intervals under the ingest's meter locks, so overlapping runs add
        # nothing twice; a stale run expires.
        "meters-estimate-quiet": {
            "task": "apps.meters.tasks.estimate_quiet_meters",
            "schedule": 300.0,
            "options": {"expires": 240},
        },
        # Market: clear every interval whose gate has closed. Gate closure comes every
        # MARKET_INTERVAL_MINUTES; polling every 10 s publishes the price within seconds of
        # it, and a run with nothing due is one indexed query. Idempotent (row lock + unique
        # result per interval), so overlapping runs are harmless; a stale run expires.
        "market-clear-due": {
            "task": "apps.market.tasks.market_clear_due",
            "schedule": 10.0,
            "options": {"expires": 10},
        },
        # Market: automated trading for the next intervals, so that the market has volume
        # although most members never place an order by hand. Every AUTOTRADE_SECONDS (60 by
        # default) reacts to new readings well before each gate closure; idempotent (each
        # member reconciled under its row lock), a stale run expires.
        "market-autotrade": {
            "task": "apps.market.tasks.autotrade_run",
            "schedule": float(settings.AUTOTRADE_SECONDS),
            "options": {"expires": settings.AUTOTRADE_SECONDS},
        },
        # Settlement: settle intervals whose readings are in (or whose cutoff passed) and book
        # corrections for late readings. Every minute settles within a minute of the last
        # reading; idempotent (unique interval row, ledger keys with the revision), so an
        # overlap books nothing twice; a stale run expires.
        "settlement-settle-due": {
            "task": "apps.settlement.tasks.settle_due",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        # Ledger: seal pending transactions into a block (settlement runs also seal right
        # after they book). Every 5 minutes keeps the unsealed tail, which members cannot
        # prove yet, short; an empty run is one indexed query. A missed run is simply caught
        # up by the next, so a stale one expires.
        "ledger-seal": {
            "task": "apps.ledger.tasks.seal_pending",
            "schedule": 300.0,
            "options": {"expires": 240},
        },
        # Ledger: daily verification from the last verified block (hashes, Merkle roots,
        # chain links, balances), alerting operators on failure. At night, when settlement
        # is quiet; a run that waited hours is replaced by the next day's.
        "ledger-verify-daily": {
            "task": "apps.ledger.tasks.verify",
            "schedule": crontab(hour=3, minute=17),
            "options": {"expires": 6 * 3600},
        },
        # Ledger: weekly full verification from the first block, because the daily check
        # reads only new blocks and would miss a rewrite of an old row (triggers disabled).
        "ledger-verify-weekly-full": {
            "task": "apps.ledger.tasks.verify",
            "schedule": crontab(day_of_week="sun", hour=4, minute=17),
            "kwargs": {"full": True},
            "options": {"expires": 12 * 3600},
        },
    }
