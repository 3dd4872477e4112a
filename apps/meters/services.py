"""Writes for meters: registration and device keys."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.keys import key_hash, key_new
from apps.grid.models import ConnectionPoint
from apps.members.models import Member
from apps.meters.choices import MeterRole
from apps.meters.models import Meter

DEVICE_KEY_PREFIX = "ecm"


def meter_register(
    *,
    member: Member,
    serial: str,
    connection_point: ConnectionPoint,
    installed_at: dt.datetime,
    role: str = MeterRole.MAIN,
    parent: Meter | None = None,
    bidirectional: bool = True,
) -> tuple[Meter, str]:
    """Register a meter and give it its first device key (returned once, stored hashed)."""
    serial = serial.strip()
    if not serial:
        raise ValidationFailed("A meter needs a serial.", fields={"serial": ["This field is required."]})
    if role not in MeterRole.values:
        raise ValidationFailed(f"Unknown meter role {role!r}.", fields={"role": [f"One of {MeterRole.values}."]})
    if role == MeterRole.SUB:
        if parent is None or parent.role != MeterRole.MAIN:
            raise ValidationFailed("A sub-meter sits behind a main meter.", fields={"parent": ["A main meter."]})
        if parent.member_id != member.pk or parent.connection_point_id != connection_point.pk:
            raise ValidationFailed(
                "A sub-meter belongs to its main meter's member and connection.", fields={"parent": ["Mismatch."]}
            )
    elif parent is not None:
        raise ValidationFailed("A main meter has no parent.", fields={"parent": ["Leave empty for a main meter."]})
    with transaction.atomic():
        if Meter.objects.filter(serial=serial).exists():
            raise Conflict(f"Meter {serial} is already registered.", code="meter_exists")
        if (
            role == MeterRole.MAIN
            and Meter.objects.filter(
                connection_point=connection_point, role=MeterRole.MAIN, removed_at__isnull=True
            ).exists()
        ):
            raise Conflict(
                f"Connection point {connection_point.code} already has a main meter.", code="main_meter_exists"
            )
        meter = Meter.objects.create(
            serial=serial,
            member=member,
            connection_point=connection_point,
            role=role,
            parent=parent,
            bidirectional=bidirectional,
            installed_at=installed_at,
        )
        key = _key_set(meter=meter)
    return meter, key


def _key_set(*, meter: Meter) -> str:
    key = key_new(DEVICE_KEY_PREFIX)
    meter.key_hash = key_hash(key)
    meter.key_prefix = key[:10]
    meter.key_rotated_at = timezone.now()
    meter.save(update_fields=["key_hash", "key_prefix", "key_rotated_at", "updated_at"])
    return key


def meter_key_rotate(*, meter: Meter) -> str:
    """A new device key for the meter; the previous key stops working at once."""
    with transaction.atomic():
        locked = Meter.objects.select_for_update().get(pk=meter.pk)
        return _key_set(meter=locked)


def meter_authenticate(*, key: str) -> Meter | None:
    """The meter whose device key this is, or None (swapped-out meters keep no key)."""
    return Meter.objects.filter(key_hash=key_hash(key)).select_related("member").first()
