"""``rollups_refresh [--watch SECONDS]``: drain the rollup backlog once, or keep draining."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.meters.services import rollups_drain


class Command(BaseCommand):
    help = "Bring hourly and daily rollups up to date with the interval energy that changed (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--watch", type=float, default=0, help="Keep draining, polling every SECONDS.")
        parser.add_argument("--limit", type=int, default=5_000, help="Backlog entries per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            drained = rollups_drain(limit=options["limit"])
            if drained:
                self.stdout.write(f"drained {drained} backlog entries")
            if not options["watch"]:
                return
            time.sleep(options["watch"])
