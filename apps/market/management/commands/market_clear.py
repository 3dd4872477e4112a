"""``market_clear [--interval START]``: clear what is due, or the interval named; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common import clock
from apps.common.commands import interval_option_add, interval_option_parse
from apps.common.exceptions import DomainError
from apps.market.services import interval_clear, intervals_clear_due


class Command(BaseCommand):
    help = "Clear every interval with orders whose gate has closed (or the one named); safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        interval_option_add(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock.now()
        try:
            start = interval_option_parse(options["interval"])
            results = [interval_clear(start=start, now=now)] if start is not None else intervals_clear_due(now=now)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for result in results:
            self.stdout.write(
                f"{clock.format_instant(result.interval.start)} price={result.price} "
                f"volume_wh={result.volume_wh} trades={result.trades_count}"
            )
        if not results:
            self.stdout.write("Nothing to clear.")
