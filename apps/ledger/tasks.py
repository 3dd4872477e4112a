"""Thin Celery entry points of the ledger: periodic sealing and the scheduled verification."""

from __future__ import annotations

from celery import shared_task

from apps.ledger.services import ledger_seal_all, ledger_verification_run


@shared_task(name="apps.ledger.tasks.seal_pending", ignore_result=True)
def seal_pending() -> int:
    """Seal what is pending; safe twice and at once (sealers take turns on one lock)."""
    return len(ledger_seal_all())


@shared_task(name="apps.ledger.tasks.verify", ignore_result=True)
def verify(full: bool = False) -> bool:
    """Verify from the last verified block (or all of it), record a checkpoint, alert operators on failure."""
    return ledger_verification_run(full=full).ok
