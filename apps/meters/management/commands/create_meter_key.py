"""``create_meter_key SERIAL``: print a new device key once; the previous key stops working."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.meters.models import Meter
from apps.meters.services import meter_key_rotate


class Command(BaseCommand):
    help = "Issue a new device key for a meter (printed once); the old key stops working."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("serial")

    def handle(self, *args: Any, **options: Any) -> None:
        meter = Meter.objects.filter(serial=options["serial"]).first()
        if meter is None:
            raise CommandError(f"No meter with serial {options['serial']!r}.")
        self.stdout.write(meter_key_rotate(meter=meter))
