"""The meter simulator: believable readings that pass validation, posted through the API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command

from apps.common import clock
from apps.meters.models import IntervalEnergy, Meter, MeterRollup, Reading, ReadingRejection
from apps.portal.demo import demo_community_seed, demo_history_backfill
from apps.portal.management.commands import simulate_meters
from tests.conftest import bearer

pytestmark = pytest.mark.django_db


def test_seed_demo_backfills_history_through_the_services(settings):
    demo_community_seed(members=4)
    stored = demo_history_backfill(days=1)
    meters = Meter.objects.filter(serial__startswith="DEMO-")
    assert stored == Reading.objects.count() == meters.count() * 97
    assert not ReadingRejection.objects.exists()
    assert IntervalEnergy.objects.count() == meters.count() * 96
    assert not IntervalEnergy.objects.filter(estimated=True).exists()
    assert MeterRollup.objects.filter(grain="hour").count() >= meters.count() * 24
    pv = IntervalEnergy.objects.filter(meter__serial__endswith="-PV")
    if pv.exists():
        # Nothing at local midnight, something around noon.
        assert sum(e.import_wh for e in pv if e.interval_start.hour in (22, 23, 0, 1)) == 0
        assert sum(e.import_wh for e in pv if 10 <= e.interval_start.hour <= 13) > 0
    # Again: nothing twice.
    assert demo_history_backfill(days=1) == 0


def test_simulate_meters_posts_through_the_api_with_device_keys(monkeypatch):
    demo_community_seed(members=2)
    posted: list[tuple[str, int]] = []

    def post(self, serial: str, readings: list[dict]) -> int:
        response = bearer(self.keys[serial]).post(
            f"/api/v1/meters/{serial}/readings/", {"readings": readings}, format="json"
        )
        assert response.status_code == 200, response.content
        body = json.loads(response.content)
        posted.append((serial, body["accepted"]))
        return body["accepted"]

    monkeypatch.setattr(simulate_meters.Command, "_post", post)
    monkeypatch.setattr(simulate_meters.Command, "_wait_for_server", lambda self: None)
    call_command("simulate_meters", "--once", "--catch-up-days", "0.25", "--seed", "1", "--missing-share", "0")
    serials = set(Meter.objects.filter(serial__startswith="DEMO-").values_list("serial", flat=True))
    assert {serial for serial, _ in posted} == serials
    assert not ReadingRejection.objects.exists()
    boundary = clock.now().replace(minute=clock.now().minute // 15 * 15, second=0, microsecond=0)
    latest = Reading.objects.order_by("-ts").first()
    assert latest is not None and latest.ts == boundary
    assert Reading.objects.filter(ts__lt=boundary - dt.timedelta(hours=6)).count() == 0
