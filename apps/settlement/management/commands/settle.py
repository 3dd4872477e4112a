"""``settle [--interval START]``: settle what is due, or the interval named; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common import clock
from apps.common.commands import interval_option_add, interval_option_parse
from apps.common.exceptions import DomainError
from apps.settlement.services import corrections_run, interval_resettle, interval_settle, intervals_settle_due


class Command(BaseCommand):
    help = "Settle every interval that is due (or the one named) and book corrections; safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        interval_option_add(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock.now()
        try:
            start = interval_option_parse(options["interval"])
            if start is not None:
                report = interval_settle(start=start, now=now)
                reports = [report if not report.already else interval_resettle(start=start, now=now)]
            else:
                reports = intervals_settle_due(now=now) + corrections_run(now=now)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for r in reports:
            what = "corrected" if r.corrected else ("already settled" if r.already else "settled")
            self.stdout.write(
                f"{clock.format_instant(r.interval_start)} {what}: members={r.members} "
                f"booked={r.booked} corrected={r.corrected} estimated={r.estimated}"
            )
        if not reports:
            self.stdout.write("Nothing to settle.")
