"""Meter pages: readings and interval energy with estimates marked; the operators' health page."""

from __future__ import annotations

import pytest

from apps.members.choices import Role
from apps.meters.services import readings_ingest
from tests.factories import member_make, meter_make
from tests.meters.conftest import STEP, iso

pytestmark = pytest.mark.django_db


def _with_a_gap(meter, day0):
    readings_ingest(
        readings=[
            {"ts": iso(day0), "import_wh": 1000, "export_wh": 0},
            {"ts": iso(day0 + STEP), "import_wh": 1100, "export_wh": 5},
            {"ts": iso(day0 + 4 * STEP), "import_wh": 1400, "export_wh": 20},
            {"ts": iso(day0 + 5 * STEP), "import_wh": 1300, "export_wh": 20},  # refused: rollback
        ],
        meter=meter,
    )


def test_owner_sees_readings_and_interval_energy_with_estimates_marked(client, day0):
    member = member_make()
    meter, _ = meter_make(member)
    _with_a_gap(meter, day0)
    client.force_login(member.user)
    home = client.get("/")
    assert f'href="/meters/{meter.serial}/"' in home.content.decode()
    page = client.get(f"/meters/{meter.serial}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="estimated"') == 3  # the three intervals of the gap
    assert "3 of these intervals are estimated" in html
    assert "1,400" in html and "measured" in html


def test_someone_elses_meter_is_not_found(client, day0):
    meter, _ = meter_make(member_make())
    client.force_login(member_make().user)
    assert client.get(f"/meters/{meter.serial}/").status_code == 404
    assert client.get("/meters/NOPE/").status_code == 404


def test_operator_page_lists_gaps_and_refused_readings(client, day0, django_assert_max_num_queries):
    from apps.meters.services import rollups_drain

    meter, _ = meter_make(member_make())
    _with_a_gap(meter, day0)
    rollups_drain()
    for _ in range(5):
        meter_make(member_make())
    client.force_login(member_make(role=Role.OPERATOR).user)
    with django_assert_max_num_queries(12):
        page = client.get("/operator/meters/")
    assert page.status_code == 200
    html = page.content.decode()
    assert meter.serial in html and "register_rollback × 1" in html
    assert "lower than 1400" in html


def test_operator_page_is_for_operators(client):
    client.force_login(member_make().user)
    assert client.get("/operator/meters/").status_code == 403


def test_member_energy_page_reads_rollups_in_few_queries(client, day0, django_assert_max_num_queries):
    from apps.meters.services import rollups_drain

    member = member_make()
    meter, _ = meter_make(member)
    _with_a_gap(meter, day0)
    rollups_drain()
    client.force_login(member.user)
    with django_assert_max_num_queries(8):
        page = client.get("/energy/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "400" in html and "3 estimated" in html
    assert client.get("/energy/?grain=hour").status_code == 200
