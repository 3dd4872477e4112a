"""``create_member EMAIL [--role ...] [--meter SERIAL [--feeder NAME]]...`` (CONTRACT.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.common import clock
from apps.common.exceptions import DomainError
from apps.grid.services import connection_point_create, feeder_get_or_create
from apps.members.choices import MemberStatus, Role
from apps.members.services import api_token_create, member_create
from apps.meters.services import meter_register

DEFAULT_FEEDER = "Feeder 1"


class _MeterAction(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        meters = getattr(namespace, "meters", None) or []
        meters.append({"serial": values, "feeder": None})
        namespace.meters = meters


class _FeederAction(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        meters = getattr(namespace, "meters", None) or []
        if not meters:
            parser.error("--feeder names the feeder of the --meter before it; give --meter first.")
        if meters[-1]["feeder"] is not None:
            parser.error(f"--meter {meters[-1]['serial']} has two --feeder options.")
        meters[-1]["feeder"] = values


class Command(BaseCommand):
    help = "Create an active member (or operator/billing user) and print its token and meter keys as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--role", choices=[Role.MEMBER, Role.OPERATOR, Role.BILLING], default=Role.MEMBER)
        parser.add_argument("--meter", action=_MeterAction, dest="meters", metavar="SERIAL", default=[])
        parser.add_argument("--feeder", action=_FeederAction, metavar="NAME", help="Feeder of the preceding --meter.")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        installed_at = clock.today_start_utc()
        try:
            with transaction.atomic():
                member = member_create(
                    email=options["email"],
                    name=options["name"],
                    role=options["role"],
                    status=MemberStatus.ACTIVE,
                    email_verified=True,
                )
                _token, key = api_token_create(user=member.user, name="create_member")
                meter_keys: dict[str, str] = {}
                for spec in options["meters"]:
                    feeder = feeder_get_or_create(name=spec["feeder"] or DEFAULT_FEEDER)
                    point = connection_point_create(feeder=feeder, code=f"CP-{spec['serial']}")
                    _meter, meter_key = meter_register(
                        member=member, serial=spec["serial"], connection_point=point, installed_at=installed_at
                    )
                    meter_keys[spec["serial"]] = meter_key
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps({"member_number": member.number, "token": key, "meter_keys": meter_keys}))
