"""``seed_demo [--members N] [--days D]``: the demo community with D days of meter history
(idempotent: existing households stay, and meters that have readings are not backfilled)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.common import clock
from apps.portal.demo import DEMO_PASSWORD, demo_community_seed, demo_history_backfill
from apps.portal.replay import market_history_replay


class Command(BaseCommand):
    help = "Create a demo community: households with meters, PV, batteries, EVs and heat pumps on 3 feeders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=40, help="Households (default 40).")
        parser.add_argument(
            "--days", type=int, default=3, help="Days of simulated meter history to backfill (default 3; 0: none)."
        )
        parser.add_argument(
            "--market-hours",
            type=int,
            default=24,
            help="Of those, the last hours on which the market is replayed (automated orders, clearing) "
            "so that past prices show at once (default 24; 0: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_community_seed(members=options["members"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo community: {result.created} households created, {result.existing} already there. "
                f"Sign in as household001@… , {result.operator_email} or {result.admin_email} "
                f"with the password {DEMO_PASSWORD!r} (demo only)."
            )
        )
        if options["days"] > 0:
            began = time.monotonic()
            readings = demo_history_backfill(days=options["days"])
            self.stdout.write(
                f"Meter history: {readings} readings over {options['days']} day(s) backfilled "
                f"in {time.monotonic() - began:.1f} s."
            )
        market_hours = min(options["market_hours"], 24 * options["days"])
        if market_hours > 0:
            began = time.monotonic()
            now = clock.now()
            cleared = market_history_replay(start=now - dt.timedelta(hours=market_hours), end=now)
            self.stdout.write(
                f"Market history: {cleared} past interval(s) traded automatically and cleared "
                f"in {time.monotonic() - began:.1f} s."
            )
