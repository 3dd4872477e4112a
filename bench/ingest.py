"""Meter ingest throughput: the bulk readings API over HTTP against raw COPY and plain Django.

    .venv/bin/python bench/ingest.py [--readings 1000000] [--meters 10000] [--repeat 3]

What it does, on a database of its own (``--database-url``, default
``postgres://postgres@127.0.0.1:5432/energycoop_bench``, dropped and created afresh):

1. migrates it and creates an operator and ``--meters`` main meters (not timed);
2. builds ``--readings`` readings, ``readings / meters`` consecutive 15-minute readings per meter,
   and serialises them as JSON request bodies of ``--batch`` readings (not timed). Each
   request carries whole days of a block of meters, the way head-end systems deliver;
3. (a) raw psycopg binary COPY of the same rows, as Python tuples, into a bare table with no
   index or constraint: the ceiling of what PostgreSQL takes in (at least five runs: it takes a
   third of a second, and swings most with the machine's load);
4. (b) plain Django ``Reading.objects.bulk_create(objs, ignore_conflicts=True)`` of the same
   rows into the readings table, building the model objects included (no validation, no
   interval energy): what the naive ORM path costs;
5. (c) the storage floor: binary COPY of the same rows, encoded beforehand, into the readings
   and interval-energy tables (their primary keys, no checks), one transaction per
   ``--batch`` readings over ``--connections`` connections: what PostgreSQL alone costs for
   what the API must store, before any HTTP, parsing or validation;
6. the API: starts uvicorn (``energycoop.asgi:application``, ``--workers`` processes, each with
   a connection pool of ``--pool`` as docs/deployment.md recommends) and posts every body to
   ``POST /api/v1/readings/bulk/`` over ``--connections`` keep-alive client connections. The
   timer runs from the first request sent to the last response received and so covers HTTP,
   JSON parsing, validation (every check of CONTRACT.md), storage of readings and the
   derivation and storage of interval energy, each request one transaction. Rollups follow
   asynchronously, in two ways, each run ``--repeat`` times:
   - *after*: ``rollups_refresh --watch`` starts at the last response (as beat would, every
     15 s); the lag printed is from the last response until the backlog is empty;
   - *alongside*: ``rollups_refresh --watch 0.2`` drains during the run and competes for the
     same two cores: the price of keeping rollups seconds behind during a bulk load;
7. checks the counts afterwards (readings, intervals, accepted, nothing rejected) and prints
   the medians over ``--repeat`` runs and the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000, help="Readings per request.")
    parser.add_argument("--connections", type=int, default=2, help="Client connections sending at once.")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of COPY and of the API (medians are printed).")
    parser.add_argument("--pool", type=int, default=4, help="Connection pool size per uvicorn worker (0: none).")
    parser.add_argument("--skip-orm", action="store_true", help="Skip the (slow) bulk_create baseline.")
    parser.add_argument(
        "--rollups", choices=("after", "alongside", "both"), default="both", help="When rollups are drained."
    )
    parser.add_argument(
        "--shape",
        choices=("meters", "time"),
        default="meters",
        help="meters: each request holds whole days of a block of meters (head-end day files, the default); "
        "time: each request holds one instant of every meter (live polling).",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/energycoop_bench"),
    )
    return parser.parse_args()


def _database_recreate(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>12,.0f} rows/s"


def main() -> None:
    args = _args()
    per_meter = args.readings // args.meters
    if per_meter * args.meters != args.readings or (args.shape == "meters" and args.batch % per_meter):
        sys.exit("--readings must be a multiple of --meters, and --batch a multiple of readings per meter")
    env = os.environ.copy()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "energycoop.settings.test",
            "DATABASE_URL": args.database_url,
            "DATABASE_CONN_MAX_AGE": "0",  # not reused under ASGI: the pool (web processes only) is
            "DATABASE_POOL_MAX_SIZE": str(args.pool),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.update(env)
    print(f"Meter ingest bench: {args.readings:,} readings for {args.meters:,} meters ({per_meter} each, "
          f"requests shaped by {args.shape}), "
          f"requests of {args.batch:,}, {args.connections} client connections, {args.workers} uvicorn workers "
          f"(connection pool {args.pool} each), {args.repeat} run(s)")  # fmt: skip
    _database_recreate(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection

    from apps.meters.models import IntervalEnergy, Reading, ReadingRejection, RollupBacklog

    operator_token, serials, meter_ids, start = _fixtures(args.meters, per_meter)
    with connection.cursor() as cursor:
        # This machine's PostgreSQL runs with autovacuum off; a real one would have analysed
        # the freshly loaded meters and connection points by now.
        cursor.execute("ANALYZE")
    rows, bodies = _workload(serials, meter_ids, start, per_meter, args.batch, by_time=args.shape == "time")
    print(f"workload: {len(bodies)} request bodies, {sum(len(b) for b in bodies) / 1e6:,.1f} MB of JSON")

    # (a) raw binary COPY into a bare table
    copy_times = []
    with connection.cursor() as cursor:
        for _ in range(max(args.repeat, 5)):  # a third of a second each: the median of at least five
            cursor.execute("DROP TABLE IF EXISTS bench_raw_copy")
            cursor.execute(
                "CREATE TABLE bench_raw_copy (meter_id bigint, ts timestamptz, import_wh bigint, export_wh bigint)"
            )
            began = time.perf_counter()
            with cursor.copy(
                "COPY bench_raw_copy (meter_id, ts, import_wh, export_wh) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["int8", "timestamptz", "int8", "int8"])
                for row in rows:
                    cp.write_row(row)
            copy_times.append(time.perf_counter() - began)
            cursor.execute("SELECT count(*) FROM bench_raw_copy")
            assert cursor.fetchone()[0] == len(rows)
        cursor.execute("DROP TABLE bench_raw_copy")
    copy_s = statistics.median(copy_times)

    # (b) plain Django bulk_create(ignore_conflicts=True)
    orm_s = None
    if not args.skip_orm:
        began = time.perf_counter()
        for chunk in range(0, len(rows), args.batch):
            Reading.objects.bulk_create(
                [
                    Reading(meter_id=m, ts=ts, import_wh=i, export_wh=e)
                    for m, ts, i, e in rows[chunk : chunk + args.batch]
                ],
                ignore_conflicts=True,
            )
        orm_s = time.perf_counter() - began
        assert Reading.objects.count() == len(rows)

    # (c) the storage floor: what PostgreSQL alone costs for the rows the API stores
    floor_times = []
    for _ in range(args.repeat):
        _tables_empty(connection)
        floor_times.append(_storage_floor(args.database_url, rows, args.batch, args.connections))
        assert Reading.objects.count() == len(rows)
        assert IntervalEnergy.objects.count() == len(rows) - args.meters
    floor_s = statistics.median(floor_times)

    # The API, over HTTP, against a real ASGI server
    modes = ["after", "alongside"] if args.rollups == "both" else [args.rollups]
    api_times: dict[str, list[float]] = {mode: [] for mode in modes}
    lags: dict[str, list[float]] = {mode: [] for mode in modes}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "energycoop.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(args.workers), "--no-access-log", "--log-level", "warning", "--lifespan", "off"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    drainer = None
    try:
        _wait_for(port)
        _post_all(port, operator_token, [b'{"readings": []}'] * 4 * args.workers, args.connections)  # warm-up
        for _run in range(args.repeat):
            for mode in modes:
                _tables_empty(connection)
                drain = [sys.executable, "manage.py", "rollups_refresh", "--watch", "0.2", "--limit", "20000"]
                if mode == "alongside":
                    drainer = subprocess.Popen(drain, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                elapsed, answers = _post_all(port, operator_token, bodies, args.connections)
                done_at = time.perf_counter()
                if mode == "after":
                    drainer = subprocess.Popen(drain, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                accepted = sum(a["accepted"] for a in answers)
                rejected = sum(len(a["rejected"]) for a in answers)
                assert accepted == len(rows) and rejected == 0, (accepted, rejected)
                while RollupBacklog.objects.exists():
                    time.sleep(0.05)
                lag = time.perf_counter() - done_at
                assert drainer is not None
                drainer.terminate()
                drainer.wait(timeout=30)
                drainer = None
                assert Reading.objects.count() == len(rows)
                assert IntervalEnergy.objects.count() == len(rows) - args.meters
                assert not IntervalEnergy.objects.filter(estimated=True).exists()
                assert not ReadingRejection.objects.exists()
                api_times[mode].append(elapsed)
                lags[mode].append(lag)
                print(f"  API run {_run + 1}, rollups {mode:<9}: {elapsed:6.2f} s, {_rate(len(rows), elapsed)}; "
                      f"rollup lag {lag:5.2f} s")  # fmt: skip
    finally:
        if drainer is not None:
            drainer.kill()
        server.terminate()
        server.wait(timeout=30)
    n = len(rows)
    print()
    print(f"{'path':<66} {'seconds':>8} {'throughput':>22} {'vs COPY':>8}")

    def line(label: str, seconds: float) -> None:
        print(f"{label:<66} {seconds:8.2f} {_rate(n, seconds):>22} {copy_s / seconds:8.1%}")

    line("(a) raw binary COPY into a bare table (median)", copy_s)
    if orm_s is not None:
        line("(b) Django bulk_create(ignore_conflicts=True)", orm_s)
    line(f"(c) storage floor: COPY into both keyed tables, {args.connections} connections (median)", floor_s)
    for mode in modes:
        line(f"API over HTTP, rollups {mode} (median)", statistics.median(api_times[mode]))
    for mode in modes:
        api_s = statistics.median(api_times[mode])
        ratios = f"API / bulk_create {orm_s / api_s:.1f}x, " if orm_s is not None else ""
        print(f"rollups {mode}: {ratios}API / storage floor {floor_s / api_s:.0%}, "
              f"rollup lag after the last response, median {statistics.median(lags[mode]):.2f} s")  # fmt: skip
    print("timers: (a) COPY of prepared tuples, one transaction; (b) model objects built + bulk_create per "
          f"{args.batch:,}; (c) COPY of pre-encoded rows into meters_reading and meters_intervalenergy, one "
          f"transaction per {args.batch:,}; API: first request sent to last response received (HTTP, orjson "
          "parsing, validation, readings and interval energy stored, one transaction per request)")  # fmt: skip
    print(f"checked: {n:,} readings stored, {n - args.meters:,} measured intervals, 0 rejected, 0 estimated")


def _tables_empty(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE meters_reading, meters_intervalenergy, meters_intervalcorrection, meters_rollupbacklog, "
            "meters_meterrollup, meters_memberrollup, meters_feederrollup, meters_readingrejection"
        )


def _storage_floor(url: str, rows: list[tuple], batch: int, connections: int) -> float:
    """Seconds to COPY the rows and their interval energy into the two tables, one transaction
    per batch, ``connections`` at once (the rows encoded beforehand, by the ingest's encoder)."""
    import numpy as np
    import psycopg

    from apps.meters import store

    now_us = int((time.time() - store.PG_EPOCH_SECONDS) * 1_000_000)
    meter = np.array([r[0] for r in rows], dtype=np.int64)
    ts = np.array([int(r[1].timestamp()) for r in rows], dtype=np.int64)
    imp = np.array([r[2] for r in rows], dtype=np.int64)
    exp = np.array([r[3] for r in rows], dtype=np.int64)
    # rows run meter by meter in time order: each row but a meter's first closes an interval
    closes = np.zeros(len(rows), dtype=bool)
    closes[1:] = meter[1:] == meter[:-1]
    jobs: queue.Queue[tuple[bytes, bytes]] = queue.Queue()
    for at in range(0, len(rows), batch):
        part = slice(at, at + batch)
        k = np.flatnonzero(closes[part]) + at
        readings = store.copy_binary(
            ["int8", "ts", "int8", "int8", "us"],
            [meter[part], ts[part], imp[part], exp[part], np.full(len(meter[part]), now_us)],
        )
        intervals = store.copy_binary(
            ["int8", "ts", "int8", "int8", "bool"],
            [meter[k], ts[k - 1], imp[k] - imp[k - 1], exp[k] - exp[k - 1], np.zeros(len(k), dtype=bool)],
        )
        jobs.put((readings, intervals))

    def writer() -> None:
        with psycopg.connect(url) as conn:
            while True:
                try:
                    readings, intervals = jobs.get_nowait()
                except queue.Empty:
                    return
                with conn.transaction(), conn.cursor() as cursor:
                    with cursor.copy(
                        "COPY meters_reading (meter_id, ts, import_wh, export_wh, received_at) "
                        "FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.write(readings)
                    with cursor.copy(
                        "COPY meters_intervalenergy (meter_id, interval_start, import_wh, export_wh, estimated) "
                        "FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.write(intervals)

    return _threads_run(writer, connections)


def _threads_run(target: Callable[[], None], count: int) -> float:
    """Seconds from starting ``count`` threads running ``target`` until the last one ends."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def _fixtures(meter_count: int, per_meter: int):
    """An operator and ``meter_count`` main meters on 10 feeders (bulk-created, not timed)."""
    from apps.common import clock
    from apps.grid.models import ConnectionPoint
    from apps.grid.services import feeder_get_or_create
    from apps.members.choices import MemberStatus, Role
    from apps.members.services import api_token_create, member_create
    from apps.meters.models import Meter

    operator = member_create(
        email="bench-operator@example.org", role=Role.OPERATOR, status=MemberStatus.ACTIVE, email_verified=True
    )
    _token, key = api_token_create(user=operator.user, name="bench")
    members = [
        member_create(email=f"bench{i}@example.org", status=MemberStatus.ACTIVE, email_verified=True)
        for i in range(100)
    ]
    feeders = [feeder_get_or_create(name=f"Bench feeder {i}") for i in range(10)]
    points = ConnectionPoint.objects.bulk_create(
        [
            ConnectionPoint(feeder=feeders[i % 10], code=f"CP-BENCH-{i:06d}", capacity_w=17_250)
            for i in range(meter_count)
        ]
    )
    start = clock.today_start_utc() - dt.timedelta(days=(per_meter // 96) + 3)
    meters = Meter.objects.bulk_create(
        [
            Meter(serial=f"BENCH-{i:06d}", member=members[i % 100], connection_point=points[i], installed_at=start)
            for i in range(meter_count)
        ]
    )
    return key, [m.serial for m in meters], [m.pk for m in meters], start


def _workload(
    serials: list[str], meter_ids: list[int], start: dt.datetime, per_meter: int, batch: int, *, by_time: bool
):
    """The same readings as tuples (for COPY and bulk_create) and as JSON bodies (for the API)."""
    import orjson

    rng = random.Random(42)
    step = dt.timedelta(minutes=15)
    stamps = [start + k * step for k in range(per_meter)]
    iso = [t.isoformat().replace("+00:00", "Z") for t in stamps]
    rows, items = [], []
    for serial, mid in zip(serials, meter_ids, strict=True):
        imp, exp = rng.randint(0, 10**7), rng.randint(0, 10**6)
        for k in range(per_meter):
            rows.append((mid, stamps[k], imp, exp))
            items.append({"serial": serial, "ts": iso[k], "import_wh": imp, "export_wh": exp})
            imp += rng.randint(0, 900)
            exp += rng.randint(0, 400)
    if by_time:
        order = sorted(range(len(items)), key=lambda i: (i % per_meter, i // per_meter))
        items = [items[i] for i in order]
    bodies = [orjson.dumps({"readings": items[i : i + batch]}) for i in range(0, len(items), batch)]
    return rows, bodies


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("uvicorn did not start")


def _post_all(port: int, token: str, bodies: list[bytes], connections: int) -> tuple[float, list[dict]]:
    import orjson

    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    answers: list[dict] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            conn.request("POST", "/api/v1/readings/bulk/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                errors.append(f"{response.status}: {data[:300]!r}")
                break
            answers.append(orjson.loads(data))
        conn.close()

    elapsed = _threads_run(client, connections)
    if errors:
        raise SystemExit(f"API errors: {errors[:3]}")
    return elapsed, answers


if __name__ == "__main__":
    main()
