"""Settlement benchmark: seconds to settle one interval for N members, and ledger_verify after.

    .venv/bin/python bench/settlement.py                  # 10,000 members, median of 5
    .venv/bin/python bench/settlement.py --members 2000 --repeats 3

Uses its own PostgreSQL database (DATABASE_URL, default .../energycoop_bench_settlement).
Setup (not timed): N active members, each with a main meter; for every timed interval the
meters' readings go in through the real ingest service (interval energy derived from
register deltas), N/2 orders are written (COPY) and the interval is cleared by the real
clearing service, so settlement has P2P trades as well as grid lines. The timer covers
`interval_settle()`, the service the beat task and `manage.py settle` call: read meter
energy, trades and tariffs, apply the rules, write N MemberSettlement rows and N balanced
ledger transactions, commit, seal. Afterwards: counts, every transaction balanced, and
`ledger_verify` over the whole ledger.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energycoop.settings.test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/energycoop_bench_settlement")
    os.environ.setdefault("CHANNELS_PREFIX", "bench")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def members_with_meters(count: int, installed_at: dt.datetime) -> list[tuple[int, int, str]]:
    """(member id, meter id, serial) for `count` bench members, created once via the services."""
    from apps.grid.services import connection_point_create, feeder_get_or_create
    from apps.members.choices import MemberStatus
    from apps.members.services import member_create
    from apps.meters.models import Meter
    from apps.meters.services import meter_register

    rows = list(
        Meter.objects.filter(serial__startswith="BENCH-").order_by("pk").values_list("member_id", "pk", "serial")
    )
    feeder = feeder_get_or_create(name="Bench feeder")
    for index in range(len(rows), count):
        member = member_create(email=f"settle-{index}@bench.example", status=MemberStatus.ACTIVE, email_verified=True)
        serial = f"BENCH-{index:06d}"
        point = connection_point_create(feeder=feeder, code=f"CP-{serial}")
        meter, _ = meter_register(member=member, serial=serial, connection_point=point, installed_at=installed_at)
        rows.append((member.pk, meter.pk, serial))
        if index % 1000 == 999:
            print(f"  setup: {index + 1:,} members", flush=True)
    return rows[:count]


def readings_post(rows, boundaries: list[dt.datetime], seed: int, now: dt.datetime) -> None:
    """Cumulative registers at each boundary for every meter, through the ingest service."""
    import random

    from apps.common.clock import format_instant
    from apps.meters.services import readings_ingest

    rng = random.Random(seed)
    epoch = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    batch: list[dict] = []
    for _member_id, _meter_id, serial in rows:
        for boundary in boundaries:
            # Registers that only grow, across runs too: 1,000 Wh per interval since 2030, give
            # or take up to 800 Wh of this interval's own jitter (import) or export.
            k = int((boundary - epoch) / dt.timedelta(minutes=15))
            imp = k * 1000 + rng.randint(0, 800)
            exp = k * 300 + rng.choice((0, 0, rng.randint(0, 299)))
            batch.append({"serial": serial, "ts": format_instant(boundary), "import_wh": imp, "export_wh": exp})
            if len(batch) >= 10_000:
                result = readings_ingest(readings=batch, now=now)
                assert not result.rejected, result.rejected[:3]
                batch = []
    if batch:
        result = readings_ingest(readings=batch, now=now)
        assert not result.rejected, result.rejected[:3]


def orders_and_clear(rows, start: dt.datetime, seed: int) -> None:
    """Half the members' orders straight into the table (setup, as bench/clearing.py does),
    then the real clearing, so that settlement reads real trades."""
    sys.path.insert(0, str(ROOT / "bench"))
    from clearing import _bench_orders

    from apps.market.services import interval_clear, interval_get_or_create

    interval = interval_get_or_create(start=start)
    _bench_orders(interval, [member_id for member_id, _, _ in rows], len(rows) // 2, seed=seed)
    interval_clear(start=start, now=start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    setup_django()
    from io import StringIO

    from django.core.management import call_command
    from django.db.models import Sum

    from apps.ledger.models import Posting, Transaction
    from apps.settlement.models import MemberSettlement, SettledInterval
    from apps.settlement.services import interval_settle

    latest = SettledInterval.objects.order_by("-interval_start").values_list("interval_start", flat=True).first()
    base = (latest or dt.datetime(2031, 3, 2, tzinfo=dt.UTC)).replace(hour=0, minute=0) + dt.timedelta(days=1)
    step = dt.timedelta(minutes=15)
    now = base + dt.timedelta(days=1)
    print(f"setup: {args.members:,} members with a main meter (created once, kept in the bench database)")
    rows = members_with_meters(args.members, installed_at=base - dt.timedelta(days=1))
    starts = [base + k * step for k in range(args.repeats)]
    readings_post(rows, [*starts, starts[-1] + step], seed=args.seed, now=now)
    print(f"setup: readings for {len(starts)} intervals ingested; orders placed and cleared per interval")
    print("timer covers: interval_settle() - inputs, rules, N settlements and N ledger transactions, commit, seal")
    seconds = []
    for start in starts:
        orders_and_clear(rows, start, seed=args.seed + start.minute)
        began = time.perf_counter()
        report = interval_settle(start=start, now=now)
        seconds.append(time.perf_counter() - began)
        settled = MemberSettlement.objects.filter(interval_start=start, current=True)
        booked = settled.exclude(ledger_transaction_id=None).count()
        txs = Transaction.objects.filter(kind="settlement", idempotency_key__contains=start.strftime("%Y-%m-%dT%H:%M"))
        unbalanced = (
            Posting.objects.filter(transaction__in=txs).values("transaction_id").annotate(s=Sum("amount")).exclude(s=0)
        )
        ok = settled.count() == args.members and txs.count() == booked and not unbalanced.exists()
        print(
            f"  {start:%Y-%m-%d %H:%M}Z: {seconds[-1]:.3f} s  settlements {settled.count():,}  "
            f"transactions {txs.count():,}  check: {'ok' if ok else 'FAILED'}  ({report.members:,} members)"
        )
    print(f"median of {len(seconds)}: {statistics.median(seconds):.3f} s for {args.members:,} members (target < 10 s)")
    out = StringIO()
    began = time.perf_counter()
    call_command("ledger_verify", stdout=out)
    print(f"ledger_verify: {time.perf_counter() - began:.2f} s -> {out.getvalue().strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
