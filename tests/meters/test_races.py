"""Ingest under concurrency and crashes, on PostgreSQL: real connections, real processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
from django.db import connections

from apps.meters.models import IntervalEnergy, Reading, ReadingRejection, RollupBacklog
from apps.meters.services import readings_ingest
from tests.conftest import ROOT, process_env
from tests.factories import member_make, meter_make
from tests.meters.conftest import STEP, iso

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_concurrent_posts_of_overlapping_readings_store_each_once(day0):
    meters = [meter_make(member_make())[0] for _ in range(3)]
    # Two head-ends deliver overlapping halves of the same day, out of order, at the same moment.
    items = [
        {"serial": m.serial, "ts": iso(day0 + k * STEP), "import_wh": 1000 + 97 * k, "export_wh": 13 * k}
        for m in meters
        for k in range(96)
    ]
    first = [i for i in items if i["ts"] < iso(day0 + 60 * STEP)]
    second = list(reversed([i for i in items if i["ts"] >= iso(day0 + 30 * STEP)]))
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def worker(name: str, readings: list[dict]) -> None:
        try:
            barrier.wait(timeout=10)
            results[name] = readings_ingest(readings=readings)
        except Exception as exc:  # reported below
            results[name] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n, r)) for n, r in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    a, b = results["a"], results["b"]
    assert not isinstance(a, Exception) and not isinstance(b, Exception), (a, b)
    overlap = len(first) + len(second) - len(items)
    assert a.accepted + b.accepted == len(items)  # type: ignore[union-attr]
    assert a.duplicates + b.duplicates == overlap  # type: ignore[union-attr]
    assert not a.rejected and not b.rejected  # type: ignore[union-attr]
    assert Reading.objects.count() == len(items)
    for meter in meters:
        energy = list(IntervalEnergy.objects.filter(meter=meter).order_by("interval_start"))
        assert [(e.import_wh, e.export_wh, e.estimated) for e in energy] == [(97, 13, False)] * 95


def test_sigkill_mid_transaction_leaves_nothing_half_written(day0):
    meter, _ = meter_make(member_make())
    # A process stores a request's readings and interval energy, then is killed before commit.
    script = f"""
import django, sys, time
django.setup()
from apps.meters import store
from apps.meters.models import Meter
from apps.meters.services import readings_ingest
original = store.backlog_insert
def stall(**kwargs):
    original(**kwargs)
    print("WRITTEN", flush=True)
    time.sleep(120)
store.backlog_insert = stall
readings = [{{"ts": "{iso(day0)}", "import_wh": 10, "export_wh": 0}},
            {{"ts": "{iso(day0 + STEP)}", "import_wh": 20, "export_wh": 0}},
            {{"ts": "bad", "import_wh": 20, "export_wh": 0}}]
readings_ingest(readings=readings, meter=Meter.objects.get(pk={meter.pk}))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=process_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "WRITTEN"
        proc.kill()  # SIGKILL: no cleanup, no rollback from the client side
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not Reading.objects.filter(meter=meter).exists()
    assert not IntervalEnergy.objects.filter(meter=meter).exists()
    assert not RollupBacklog.objects.filter(meter_id=meter.pk).exists()
    assert not ReadingRejection.objects.exists()
    # The meter's lock died with the connection: the resend goes through, once.
    result = readings_ingest(
        readings=[
            {"ts": iso(day0), "import_wh": 10, "export_wh": 0},
            {"ts": iso(day0 + STEP), "import_wh": 20, "export_wh": 0},
        ],
        meter=meter,
    )
    assert result.accepted == 2
    assert IntervalEnergy.objects.get(meter=meter).import_wh == 10
    assert day0 + dt.timedelta(0) == Reading.objects.filter(meter=meter).order_by("ts").first().ts
