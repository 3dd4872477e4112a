"""``seed_demo [--members N]``: the demo community (idempotent: existing households stay)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.members.demo import DEMO_PASSWORD, demo_community_seed


class Command(BaseCommand):
    help = "Create a demo community: households with meters, PV, batteries, EVs and heat pumps on 3 feeders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=40, help="Households (default 40).")

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_community_seed(members=options["members"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo community: {result.created} households created, {result.existing} already there. "
                f"Sign in as household001@… , {result.operator_email} or {result.admin_email} "
                f"with the password {DEMO_PASSWORD!r} (demo only)."
            )
        )
