"""Member settlement pages and the offline check of the downloaded proofs."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.common.clock import format_instant
from apps.ledger.services import ledger_seal_all
from apps.meters.services import readings_ingest
from apps.settlement.services import interval_settle
from tests.conftest import ROOT
from tests.factories import member_make, meter_make

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
FIRST = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)


@pytest.fixture(autouse=True)
def business_clock(settings):
    settings.ENERGYCOOP_CLOCK = format_instant(NOW)
    settings.ENERGYCOOP_CLOCK_ANCHOR = format_instant(timezone.now())


def _settled_member(imports: list[int]):
    member = member_make()
    meter, _ = meter_make(member, installed_at=FIRST)
    readings = [{"ts": format_instant(FIRST), "import_wh": 0, "export_wh": 0}]
    total = 0
    for k, wh in enumerate(imports):
        total += wh
        readings.append({"ts": format_instant(FIRST + (k + 1) * STEP), "import_wh": total, "export_wh": 0})
    readings_ingest(readings=readings, meter=meter, now=NOW)
    for k in range(len(imports)):
        interval_settle(start=FIRST + k * STEP, now=NOW)
    return member


def test_statement_shows_balance_lines_and_only_my_settlements(client):
    alice = _settled_member([1000, 500])
    bob = _settled_member([777])
    client.force_login(alice.user)
    page = client.get(reverse("settlement")).content.decode()
    # 1,500 Wh at retail 0.30 = 0.4500 owed
    assert "-0.4500 EUR" in page and "You owe the coop" in page
    assert "0.3000" in page and "0.1500" in page
    assert "777" not in page
    assert reverse("settlement-rules", args=[1]) in page
    assert bob.number not in page


def test_rules_page_shows_the_readable_text(client):
    member = _settled_member([10])
    client.force_login(member.user)
    page = client.get(reverse("settlement-rules", args=[1])).content.decode()
    assert "import beyond B is charged at retail" in page
    assert client.get(reverse("settlement-rules", args=[99])).status_code == 404


def test_downloaded_proofs_verify_offline(client, tmp_path):
    member = _settled_member([1000, 500, 250])
    other = _settled_member([40])
    ledger_seal_all()
    client.force_login(member.user)
    response = client.get(reverse("settlement-proofs"))
    assert response.status_code == 200
    data = json.loads(response.content)
    path = tmp_path / "proofs.json"
    path.write_text(json.dumps(data))
    assert other.number not in response.content.decode()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "verify_ledger_proofs.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Tampering with a downloaded amount is caught.
    text = path.read_text().replace('"-0.3000"', '"-0.2000"', 1)
    assert text != path.read_text()
    path.write_text(text)
    tampered = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "verify_ledger_proofs.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tampered.returncode == 1
