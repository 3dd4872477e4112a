"""Device keys: stored hashed, rotated by create_meter_key, and good for nothing but readings."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.common.keys import key_hash
from apps.meters.models import Meter
from tests.conftest import bearer
from tests.factories import member_make, meter_make

pytestmark = pytest.mark.django_db


def test_device_key_is_stored_only_as_a_hash():
    meter, key = meter_make(member_make())
    stored = Meter.objects.get(pk=meter.pk)
    assert key.startswith("ecm_")
    assert stored.key_hash == key_hash(key)
    assert key not in {stored.key_hash, stored.key_prefix}


def test_a_device_key_is_forbidden_on_member_endpoints():
    _meter, key = meter_make(member_make())
    response = bearer(key).get("/api/v1/me/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_create_meter_key_rotates_and_the_old_key_stops_working():
    meter, old_key = meter_make(member_make())
    out = StringIO()
    call_command("create_meter_key", meter.serial, stdout=out)
    new_key = out.getvalue().strip()
    assert new_key.startswith("ecm_") and new_key != old_key
    meter.refresh_from_db()
    assert meter.key_hash == key_hash(new_key)
    assert bearer(old_key).get("/api/v1/me/").status_code == 401
    assert bearer(new_key).get("/api/v1/me/").status_code == 403  # known, but not a person


def test_create_meter_key_for_an_unknown_serial_fails_clearly():
    with pytest.raises(CommandError, match="No meter with serial 'NOPE'"):
        call_command("create_meter_key", "NOPE")
