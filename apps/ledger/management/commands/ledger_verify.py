"""``ledger_verify`` (CONTRACT.md): exit 0 with a summary, or non-zero naming the first broken transaction."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.ledger.services import ledger_last_verified, ledger_verification_record, ledger_verify


class Command(BaseCommand):
    help = "Recompute every transaction hash, Merkle root, chain link and balance of the ledger."

    def add_arguments(self, parser: CommandParser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--from-block", type=int, metavar="HEIGHT", help="Check from this block on (default: all).")
        where.add_argument(
            "--since-last", action="store_true", help="Check from the block after the last verified checkpoint."
        )
        parser.add_argument("--no-record", action="store_true", help="Do not append a verification checkpoint.")

    def handle(self, *args: Any, **options: Any) -> None:
        started_at = timezone.now()
        if options["since_last"] and (last := ledger_last_verified()) is not None:
            result = ledger_verify(from_block=(last.to_height or 0) + 1, anchor_hash=last.head_hash)
        else:
            result = ledger_verify(from_block=options["from_block"])
        if not options["no_record"]:
            ledger_verification_record(result=result, started_at=started_at)
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(problem)
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
