"""``ledger_seal``: append blocks over every transaction not sealed yet."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.ledger.services import ledger_seal_all


class Command(BaseCommand):
    help = "Seal the pending ledger transactions into new blocks (safe to run at the same time as others)."

    def handle(self, *args: Any, **options: Any) -> None:
        blocks = ledger_seal_all()
        for block in blocks:
            self.stdout.write(f"Sealed block {block.height}: {block.tx_count} transactions, hash {block.block_hash}")
        if not blocks:
            self.stdout.write("Nothing to seal.")
