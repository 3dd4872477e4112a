"""The column route and the item route of the ingest agree on every answer and every row."""

from __future__ import annotations

import random

import pytest

from apps.meters import ingest
from apps.meters.models import IntervalEnergy, Reading
from apps.meters.services import readings_ingest
from tests.factories import member_make, meter_make
from tests.meters.conftest import STEP, iso

pytestmark = pytest.mark.django_db


def _batches(rng: random.Random, day0, capacity_wh: int) -> list[list[dict]]:
    """Readings mostly in order, with gaps, late ones, repeats, conflicts, rollbacks and spikes."""
    registers, items = [10_000, 500], []
    for k in range(60):
        registers[0] += rng.choice([0, 50, 200, 900, capacity_wh + 1 if rng.random() < 0.05 else 10])
        registers[1] += rng.choice([0, 0, 30, 120])
        item = {"ts": iso(day0 + k * STEP), "import_wh": registers[0], "export_wh": registers[1]}
        roll = rng.random()
        if roll < 0.1:
            continue  # never sent: a gap
        if roll < 0.15:
            item = {**item, "import_wh": max(0, item["import_wh"] - 5_000)}  # rollback
        items.append(item)
        if rng.random() < 0.05:
            items.append(dict(item))  # repeat in the same request
        if rng.random() < 0.03:
            items.append({**item, "export_wh": item["export_wh"] + 1})  # conflict in the same request
    late = [i for i in items if rng.random() < 0.2]
    on_time = [i for i in items if i not in late]
    batches, start = [], 0
    while start < len(on_time):
        size = rng.randint(1, 15)
        batches.append(on_time[start : start + size])
        start += size
    batches.append(late + rng.sample(on_time, min(3, len(on_time))))  # late ones and resends
    return batches


@pytest.mark.parametrize("seed", range(20))
def test_column_and_item_routes_agree(day0, seed, monkeypatch, backend):
    member = member_make()
    by_columns, _ = meter_make(member)
    by_items, _ = meter_make(member)
    capacity_wh = by_columns.connection_point.capacity_w // 4
    for batch in _batches(random.Random(seed), day0, capacity_wh):
        answer_columns = readings_ingest(readings=[dict(i) for i in batch], meter=by_columns).as_dict()
        with monkeypatch.context() as patch:
            patch.setattr(ingest, "_columns", lambda readings, request: None)
            answer_items = readings_ingest(readings=[dict(i) for i in batch], meter=by_items).as_dict()
        strip = lambda a: (a["accepted"], a["duplicates"], [(r["index"], r["code"]) for r in a["rejected"]])  # noqa: E731
        assert strip(answer_columns) == strip(answer_items), batch
    for model, fields in ((Reading, ("ts", "import_wh", "export_wh")),
                          (IntervalEnergy, ("interval_start", "import_wh", "export_wh", "estimated"))):  # fmt: skip
        rows = [
            list(model.objects.filter(meter=m).order_by(fields[0]).values_list(*fields)) for m in (by_columns, by_items)
        ]
        assert rows[0] == rows[1]
        assert rows[0]
