"""Test data, built through the apps' services so tests see what production writes."""

from __future__ import annotations

import datetime as dt
import itertools

from apps.common import clock
from apps.grid.services import connection_point_create, feeder_get_or_create
from apps.members.choices import MemberStatus, Role
from apps.members.models import Member
from apps.members.services import api_token_create, member_create
from apps.meters.models import Meter
from apps.meters.services import meter_register

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def member_make(
    *, email: str | None = None, status: str = MemberStatus.ACTIVE, role: str = Role.MEMBER, password: str = PASSWORD
) -> Member:
    n = next(_seq)
    return member_create(
        email=email or f"member{n}@example.org",
        password=password,
        name=f"Member {n}",
        status=status,
        role=role,
        email_verified=True,
    )


def token_make(member: Member) -> str:
    _token, key = api_token_create(user=member.user, name="test")
    return key


def meter_make(
    member: Member, *, serial: str | None = None, feeder: str = "F-test", installed_at: dt.datetime | None = None
) -> tuple[Meter, str]:
    serial = serial or f"SN{next(_seq):06d}"
    point = connection_point_create(feeder=feeder_get_or_create(name=feeder), code=f"CP-{serial}")
    return meter_register(
        member=member,
        serial=serial,
        connection_point=point,
        installed_at=installed_at or clock.today_start_utc() - dt.timedelta(days=7),
    )
