"""``meter_swap OLD_SERIAL NEW_SERIAL --at ISO --old-final IMPORT EXPORT --new-initial IMPORT EXPORT``.

Records a meter replacement: the old meter's final registers close it at ``--at``, the new
meter opens with its initial registers; prints the new meter's device key once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.common.clock import parse_instant
from apps.common.exceptions import DomainError
from apps.meters.models import Meter
from apps.meters.services import meter_swap


class Command(BaseCommand):
    help = "Replace a meter at an interval boundary; prints the new meter's device key once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("old_serial")
        parser.add_argument("new_serial")
        parser.add_argument("--at", required=True, help="Interval boundary, ISO 8601 UTC.")
        parser.add_argument("--old-final", nargs=2, type=int, required=True, metavar=("IMPORT_WH", "EXPORT_WH"))
        parser.add_argument("--new-initial", nargs=2, type=int, required=True, metavar=("IMPORT_WH", "EXPORT_WH"))

    def handle(self, *args: Any, **options: Any) -> None:
        old = Meter.objects.filter(serial=options["old_serial"]).first()
        if old is None:
            raise CommandError(f"No meter with serial {options['old_serial']!r}.")
        try:
            at = parse_instant(options["at"])
            _new, key = meter_swap(
                old_meter=old,
                new_serial=options["new_serial"],
                at=at,
                old_final_import_wh=options["old_final"][0],
                old_final_export_wh=options["old_final"][1],
                new_initial_import_wh=options["new_initial"][0],
                new_initial_export_wh=options["new_initial"][1],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)
