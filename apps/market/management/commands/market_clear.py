"""``market_clear [--interval START]``: clear what is due, or the interval named; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common import clock
from apps.common.exceptions import DomainError
from apps.market.services import interval_clear, intervals_clear_due


class Command(BaseCommand):
    help = "Clear every interval with orders whose gate has closed (or the one named); safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", help="Interval start, ISO 8601 UTC, e.g. 2026-11-23T08:00:00Z.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock.now()
        try:
            if options["interval"]:
                try:
                    start = clock.parse_instant(options["interval"])
                except ValueError as exc:
                    raise CommandError(str(exc)) from exc
                results = [interval_clear(start=start, now=now)]
            else:
                results = intervals_clear_due(now=now)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for result in results:
            self.stdout.write(
                f"{clock.format_instant(result.interval.start)} price={result.price} "
                f"volume_wh={result.volume_wh} trades={result.trades_count}"
            )
        if not results:
            self.stdout.write("Nothing to clear.")
