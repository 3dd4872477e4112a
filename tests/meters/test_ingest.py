"""The readings endpoints: every rejection code, duplicates, conflicts, limits and rights."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.common import clock
from apps.meters.models import IntervalEnergy, Reading, ReadingRejection
from tests.conftest import bearer
from tests.factories import member_make, meter_make, token_make
from tests.meters.conftest import STEP, iso, post, series

pytestmark = pytest.mark.django_db


def _codes(body: dict) -> dict[int, str]:
    return {r["index"]: r["code"] for r in body["rejected"]}


def test_a_meter_posts_its_readings_and_gets_interval_energy(meter_and_key, day0, backend):
    meter, key = meter_and_key
    response = post(bearer(key), meter.serial, series(day0, 5))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert Reading.objects.filter(meter=meter).count() == 5
    energy = list(IntervalEnergy.objects.filter(meter=meter).order_by("interval_start"))
    assert [(e.interval_start, e.import_wh, e.export_wh, e.estimated) for e in energy] == [
        (day0 + k * STEP, 100, 7, False) for k in range(4)
    ]


def test_readings_in_any_order_give_the_same_result(meter_and_key, day0, backend):
    meter, key = meter_and_key
    readings = series(day0, 6)
    response = post(bearer(key), meter.serial, list(reversed(readings)))
    assert response.json()["accepted"] == 6
    assert list(IntervalEnergy.objects.filter(meter=meter).values_list("import_wh", "estimated")) == [(100, False)] * 5


def test_identical_resend_is_a_duplicate_and_a_different_value_a_conflict(meter_and_key, day0, backend):
    meter, key = meter_and_key
    client = bearer(key)
    post(client, meter.serial, series(day0, 3))
    again = series(day0, 3)
    again[1]["import_wh"] += 1
    body = post(client, meter.serial, again).json()
    assert body["accepted"] == 0 and body["duplicates"] == 2
    assert _codes(body) == {1: "conflict"}
    stored = Reading.objects.get(meter=meter, ts=day0 + STEP)
    assert stored.import_wh == 1100  # never overwritten
    assert ReadingRejection.objects.filter(meter=meter, code="conflict").count() == 1


def test_same_reading_twice_in_one_request(meter_and_key, day0, backend):
    meter, key = meter_and_key
    one = series(day0, 1)[0]
    other = {**one, "export_wh": one["export_wh"] + 5}
    body = post(bearer(key), meter.serial, [one, dict(one), other]).json()
    assert body["accepted"] == 1 and body["duplicates"] == 1
    assert _codes(body) == {2: "conflict"}


@pytest.mark.parametrize(
    "item",
    [
        "not an object",
        {"import_wh": 1, "export_wh": 1},
        {"ts": "yesterday", "import_wh": 1, "export_wh": 1},
        {"ts": "2026-01-01T00:00:00", "import_wh": 1, "export_wh": 1},  # no time zone
        {"ts": "TS", "import_wh": 1.5, "export_wh": 1},
        {"ts": "TS", "import_wh": -1, "export_wh": 1},
        {"ts": "TS", "import_wh": True, "export_wh": 1},
        {"ts": "TS", "import_wh": "12", "export_wh": 1},
        {"ts": "TS", "import_wh": 1},
        {"ts": "TS", "import_wh": 1, "export_wh": 2**70},
    ],
)
def test_malformed_items_are_invalid_and_the_request_still_answers_200(meter_and_key, day0, item):
    meter, key = meter_and_key
    if isinstance(item, dict) and item.get("ts") == "TS":
        item = {**item, "ts": iso(day0)}
    good = series(day0 + STEP, 1)
    body = post(bearer(key), meter.serial, [item, *good]).json()
    assert _codes(body) == {0: "invalid"}
    assert body["accepted"] == 1
    assert body["rejected"][0]["message"]


def test_not_on_boundary(meter_and_key, day0, backend):
    meter, key = meter_and_key
    items = [
        {"ts": iso(day0 + dt.timedelta(minutes=7)), "import_wh": 1, "export_wh": 0},
        {"ts": iso(day0 + dt.timedelta(minutes=15, seconds=30)), "import_wh": 1, "export_wh": 0},
        {"ts": "2026-01-01T10:15:00.500Z", "import_wh": 1, "export_wh": 0},
    ]
    body = post(bearer(key), meter.serial, items).json()
    assert _codes(body) == {0: "not_on_boundary", 1: "not_on_boundary", 2: "not_on_boundary"}


def test_future_by_the_business_clock(meter_and_key, settings, backend):
    meter, key = meter_and_key
    now = clock.now()
    boundary = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    items = [
        {"ts": iso(boundary), "import_wh": 10, "export_wh": 0},
        {"ts": iso(boundary + STEP), "import_wh": 20, "export_wh": 0},
    ]
    body = post(bearer(key), meter.serial, items).json()
    assert _codes(body) == {1: "future"}
    # A clock shifted a day ahead makes tomorrow's boundary the present.
    settings.ENERGYCOOP_CLOCK = iso(now + dt.timedelta(days=1))
    clock._offset.cache_clear()
    try:
        body = post(bearer(key), meter.serial, [{"ts": iso(boundary + STEP), "import_wh": 20, "export_wh": 0}]).json()
        assert body["accepted"] == 1
    finally:
        clock._offset.cache_clear()


def test_before_installation(db, backend):
    installed = clock.today_start_utc() - dt.timedelta(days=1)
    meter, key = meter_make(member_make(), installed_at=installed)
    items = [
        {"ts": iso(installed - STEP), "import_wh": 1, "export_wh": 0},
        {"ts": iso(installed), "import_wh": 1, "export_wh": 0},
    ]
    body = post(bearer(key), meter.serial, items).json()
    assert _codes(body) == {0: "before_installation"} and body["accepted"] == 1


def test_register_rollback_against_stored_and_later_readings(meter_and_key, day0, backend):
    meter, key = meter_and_key
    client = bearer(key)
    post(client, meter.serial, [series(day0, 1)[0], {"ts": iso(day0 + 4 * STEP), "import_wh": 1400, "export_wh": 78}])
    body = post(
        client,
        meter.serial,
        [
            {"ts": iso(day0 + 5 * STEP), "import_wh": 1399, "export_wh": 90},  # import lower than before
            {"ts": iso(day0 + 6 * STEP), "import_wh": 1500, "export_wh": 77},  # export lower than before
            {"ts": iso(day0 + 2 * STEP), "import_wh": 1500, "export_wh": 60},  # late, higher than a later one
            {"ts": iso(day0 + 3 * STEP), "import_wh": 1300, "export_wh": 70},  # late, fits
        ],
    ).json()
    assert _codes(body) == {0: "register_rollback", 1: "register_rollback", 2: "register_rollback"}
    assert body["accepted"] == 1
    assert "lower than" in body["rejected"][0]["message"]


def test_a_rejected_reading_does_not_become_history_for_the_next(meter_and_key, day0, backend):
    meter, key = meter_and_key
    body = post(
        bearer(key),
        meter.serial,
        [
            {"ts": iso(day0), "import_wh": 1000, "export_wh": 0},
            {"ts": iso(day0 + STEP), "import_wh": 900, "export_wh": 0},  # rollback
            {"ts": iso(day0 + 2 * STEP), "import_wh": 950, "export_wh": 0},  # judged against 1000, not 900
        ],
    ).json()
    assert _codes(body) == {1: "register_rollback", 2: "register_rollback"}


def test_spike_above_the_connection_capacity(meter_and_key, day0, backend):
    meter, key = meter_and_key
    capacity_wh = meter.connection_point.capacity_w // 4  # per 15-minute interval
    body = post(
        bearer(key),
        meter.serial,
        [
            {"ts": iso(day0), "import_wh": 0, "export_wh": 0},
            {"ts": iso(day0 + STEP), "import_wh": capacity_wh, "export_wh": 0},  # exactly the limit
            {"ts": iso(day0 + 2 * STEP), "import_wh": 2 * capacity_wh + 1, "export_wh": 0},
            # Judged against the last accepted reading, two intervals back.
            {"ts": iso(day0 + 3 * STEP), "import_wh": capacity_wh, "export_wh": 2 * capacity_wh + 1},
            {"ts": iso(day0 + 5 * STEP), "import_wh": 3 * capacity_wh, "export_wh": 0},  # over a 4-interval gap: fine
        ],
    ).json()
    assert _codes(body) == {2: "spike", 3: "spike"}
    assert body["accepted"] == 3


def test_import_only_meter_takes_no_export(db, day0, backend):
    from apps.meters.choices import MeterRole
    from apps.meters.services import meter_register

    main, _ = meter_make(member_make())
    sub, key = meter_register(
        member=main.member,
        serial="SUB-EV",
        connection_point=main.connection_point,
        installed_at=main.installed_at,
        role=MeterRole.SUB,
        parent=main,
        bidirectional=False,
    )
    body = post(
        bearer(key),
        sub.serial,
        [
            {"ts": iso(day0), "import_wh": 10},
            {"ts": iso(day0 + STEP), "import_wh": 20, "export_wh": 0},
            {"ts": iso(day0 + 2 * STEP), "import_wh": 30, "export_wh": 5},
        ],
    ).json()
    assert body["accepted"] == 2 and _codes(body) == {2: "invalid"}
    assert list(Reading.objects.filter(meter=sub).values_list("export_wh", flat=True)) == [0, 0]


def test_import_and_export_are_never_swapped_or_mixed(meter_and_key, day0, backend):
    meter, key = meter_and_key
    readings = [
        {"ts": iso(day0 + k * STEP), "import_wh": 5_000_000 + 300 * k, "export_wh": 20 + 11 * k} for k in range(4)
    ]
    readings.append({"ts": iso(day0 + 8 * STEP), "import_wh": 5_000_000 + 300 * 8, "export_wh": 20 + 11 * 8})
    post(bearer(key), meter.serial, readings)
    stored = list(Reading.objects.filter(meter=meter).order_by("ts").values_list("import_wh", "export_wh"))
    assert stored[0] == (5_000_000, 20) and stored[-1] == (5_002_400, 108)
    energy = list(IntervalEnergy.objects.filter(meter=meter).order_by("interval_start"))
    assert [e.import_wh for e in energy] == [300] * 8
    assert [e.export_wh for e in energy] == [11] * 8
    assert sum(e.import_wh for e in energy) == 2400 and sum(e.export_wh for e in energy) == 88


def test_10000_readings_in_one_request(db, backend):
    start = clock.today_start_utc() - dt.timedelta(days=110)  # 10,000 intervals are 104 days
    meter, key = meter_make(member_make(), installed_at=start)
    response = post(bearer(key), meter.serial, series(start, 10_000, import_step=10, export_step=1))
    assert response.status_code == 200
    assert response.json() == {"accepted": 10_000, "duplicates": 0, "rejected": []}
    assert IntervalEnergy.objects.filter(meter=meter).count() == 9_999


def test_more_than_10000_readings_is_a_400_and_stores_nothing(meter_and_key, day0):
    meter, key = meter_and_key
    response = post(bearer(key), meter.serial, series(meter.installed_at, 10_001))
    assert response.status_code == 400
    assert response.json()["error"]["fields"].keys() == {"readings"}
    assert not Reading.objects.filter(meter=meter).exists()
    assert not ReadingRejection.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"readings": ', b"[]", b'{"readings": {"ts": 1}}', b'{"items": []}', b"null"],
)
def test_a_bad_body_is_a_400_and_stores_nothing(meter_and_key, body):
    meter, key = meter_and_key
    response = bearer(key).post(f"/api/v1/meters/{meter.serial}/readings/", body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert not Reading.objects.exists() and not ReadingRejection.objects.exists()


def test_a_meter_key_cannot_write_another_meter(meter_and_key, day0):
    _meter, key = meter_and_key
    other, _ = meter_make(member_make())
    response = post(bearer(key), other.serial, series(day0, 2))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Reading.objects.exists()
    # Nor a serial that does not exist, nor the bulk endpoint.
    assert post(bearer(key), "NOPE", series(day0, 1)).status_code == 403
    bulk = bearer(key).post("/api/v1/readings/bulk/", {"readings": []}, format="json")
    assert bulk.status_code == 403


def test_rights_on_the_readings_endpoints(meter_and_key, operator, day0):
    meter, _key = meter_and_key
    from rest_framework.test import APIClient

    assert post(APIClient(), meter.serial, series(day0, 1)).status_code == 401
    owner_token = bearer(token_make(meter.member))
    assert post(owner_token, meter.serial, series(day0, 1)).status_code == 403
    assert post(operator, meter.serial, series(day0, 1)).json()["accepted"] == 1
    assert post(operator, "NOPE", series(day0, 1)).status_code == 404
    assert bearer("ecm_wrong").post(f"/api/v1/meters/{meter.serial}/readings/", {}, format="json").status_code == 401


def test_bulk_endpoint_with_serials(operator, day0, backend):
    a, _ = meter_make(member_make())
    b, _ = meter_make(member_make())
    items = [{**r, "serial": a.serial} for r in series(day0, 3)] + [{**r, "serial": b.serial} for r in series(day0, 2)]
    items.append({**series(day0, 1)[0], "serial": "UNKNOWN"})
    items.append(series(day0, 1)[0])  # no serial
    body = operator.post("/api/v1/readings/bulk/", {"readings": items}, format="json").json()
    assert body["accepted"] == 5
    assert _codes(body) == {5: "invalid", 6: "invalid"}
    assert IntervalEnergy.objects.filter(meter=a).count() == 2 and IntervalEnergy.objects.filter(meter=b).count() == 1
    assert ReadingRejection.objects.filter(serial="UNKNOWN", meter__isnull=True).count() == 1


@pytest.mark.parametrize("odd", [["a", "list"], {"an": "object"}, 42, "", None, "A\u0000B"], ids=repr)
def test_bulk_items_with_odd_serials_are_invalid_and_the_rest_is_stored(operator, day0, odd):
    a, _ = meter_make(member_make())
    items = [{**r, "serial": a.serial} for r in series(day0, 3)]
    items.insert(1, {**series(day0, 1)[0], "serial": odd})
    body = operator.post("/api/v1/readings/bulk/", {"readings": items}, format="json").json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert _codes(body) == {1: "invalid"}
    assert Reading.objects.filter(meter=a).count() == 3 and IntervalEnergy.objects.filter(meter=a).count() == 2
    assert ReadingRejection.objects.count() == 1


def test_bulk_serials_with_quotes_backslashes_and_braces_are_matched_exactly(operator, day0, backend):
    odd, _ = meter_make(member_make(), serial='M"1\\,{x} y')
    plain, _ = meter_make(member_make(), serial="M1")
    items = [{**r, "serial": odd.serial} for r in series(day0, 2)] + [{**r, "serial": "M1"} for r in series(day0, 2)]
    items.append({**series(day0, 1)[0], "serial": 'M"1\\'})  # a prefix of the odd serial: no such meter
    body = operator.post("/api/v1/readings/bulk/", {"readings": items}, format="json").json()
    assert body["accepted"] == 4 and _codes(body) == {4: "invalid"}
    assert Reading.objects.filter(meter=odd).count() == 2 and Reading.objects.filter(meter=plain).count() == 2


def test_a_nul_in_the_path_serial_is_not_found(operator, day0, client):
    response = operator.post("/api/v1/meters/A%00B/readings/", {"readings": series(day0, 1)}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"
    client.force_login(member_make().user)
    assert client.get("/meters/A%00B/").status_code == 404


def test_bulk_endpoint_needs_an_operator(member, api):
    assert api.post("/api/v1/readings/bulk/", {"readings": []}, format="json").status_code == 403
