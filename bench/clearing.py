"""Clearing benchmarks: prints what each timer covers, then the figures.

    .venv/bin/python bench/clearing.py                      # every section, default sizes
    .venv/bin/python bench/clearing.py --section engine --sizes 10000,100000 --repeats 3

Sections (run in the order given; add one by writing a function and listing it in
SECTIONS):
  engine  the pure engine (apps/market/matching.py) at each size, beside the pure-Python
          sort-and-walk baseline (tests/market/reference_walk.py) on the same books in the
          same run, and pymarket's 'huang' auction where it finishes (it needs pandas<3, so it
          runs in its own interpreter:
          --pymarket-python, $PYMARKET_PYTHON, or /tmp/pymarket-venv/bin/python; set one up
          with `python3 -m venv /tmp/pymarket-venv && /tmp/pymarket-venv/bin/pip install
          pymarket "pandas<3"`).

The machine is shared and noisy: compare figures from one run, medians and ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYMARKET_PYTHON = str(Path(tempfile.gettempdir()) / "pymarket-venv" / "bin" / "python")
MIN_PRICE_SCALED, MAX_PRICE_SCALED = 5_000, 40_000  # 0.05000 .. 0.40000 EUR/kWh
MIN_QUANTITY_WH, MAX_QUANTITY_WH = 100, 5_000
OPENING_US = 24 * 3600 * 1_000_000  # orders arrive over the market's 24 h opening


def book_columns(size: int, seed: int) -> dict[str, np.ndarray]:
    """A random book as an interval would load it: rows by id, ids in submission order,
    submission times in microseconds over 24 h, half bids, prices with 5 decimals."""
    rng = np.random.default_rng(seed)
    opened_us = 1_900_000_000 * 1_000_000
    return {
        "order_id": np.arange(1, size + 1, dtype=np.int64),
        "is_buy": rng.random(size) < 0.5,
        "quantity_wh": rng.integers(MIN_QUANTITY_WH, MAX_QUANTITY_WH + 1, size, dtype=np.int64),
        "price_scaled": rng.integers(MIN_PRICE_SCALED, MAX_PRICE_SCALED + 1, size, dtype=np.int64),
        "submitted": opened_us + np.sort(rng.integers(0, OPENING_US, size, dtype=np.int64)),
    }


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of `repeats` calls with the garbage collector paused (as timeit
    does), and the last call's result."""
    seconds = []
    result = None
    for _ in range(repeats):
        result = None
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            result = function()
            seconds.append(time.perf_counter() - started)
        finally:
            gc.enable()
    return statistics.median(seconds), result


def pymarket_python(requested: str | None) -> tuple[str | None, str]:
    """The interpreter that can import pymarket, or None and why not."""
    candidates = [requested] if requested else [os.environ.get("PYMARKET_PYTHON"), DEFAULT_PYMARKET_PYTHON]
    candidates.append(sys.executable)
    for candidate in filter(None, candidates):
        if not shutil.which(candidate):
            continue
        probe = subprocess.run([candidate, "-c", "import pymarket"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return candidate, ""
    tried = ", ".join(filter(None, candidates))
    return None, f"pymarket is not importable from {tried} (it needs its own venv with pandas<3)"


def pymarket_run(python: str, columns: dict[str, np.ndarray], timeout_s: float) -> dict[str, Any] | str:
    """pymarket's 'huang' on the book in its own process: its figures, or why it gave none."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "book.npz"
        np.savez(path, **columns)
        try:
            done = subprocess.run(
                [python, str(ROOT / "bench" / "pymarket_huang.py"), str(path)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"did not finish within {timeout_s:.0f} s"
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def engine_section(args: argparse.Namespace) -> None:
    from apps.market.matching import Book, clear_book, price_from_scaled
    from tests.market.reference_walk import walk_rows

    print("== engine: clearing one book, in memory ==")
    print(
        f"books: random, seed {args.seed}, ~half bids, prices uniform in "
        f"[{price_from_scaled(MIN_PRICE_SCALED)}, {price_from_scaled(MAX_PRICE_SCALED)}] EUR/kWh (5 decimals), "
        f"quantities uniform {MIN_QUANTITY_WH}..{MAX_QUANTITY_WH} Wh, submission times over 24 h, "
        + ("rows by id (ids in submission order)" if args.rows == "by-id" else "rows in random order")
    )
    print(f"timers (median of {args.repeats} runs each, garbage collector paused while timing):")
    print("  engine   clear_book(book), NumPy: split sides, rank each (a stable 16-bit radix sort on price")
    print("           over rows in (submitted, id) order, ranking them so first if they are not; lexsort when")
    print("           prices span 2^16 units or more), crossing volume from cumulative sums (bisection),")
    print("           trade pairing by merging the cumulative sums, per-order fills; out: NumPy columns")
    print("  baseline walk_rows(rows), pure Python: split sides, sorted() on the priority key, walk the two")
    print("           rankings; out: list of trade tuples and a dict of fills (same rule, same information)")
    print("  book     Book.from_arrays(...): the engine's input checks (ids unique, quantities > 0, price")
    print("           range, int64 totals) and copies; paid once per clearing, outside the engine timer")
    print("  pymarket Market.run('huang') in pymarket's own interpreter on the same book, one run; its")
    print("           mechanism is Huang et al.'s trade reduction, so its volume differs by design")
    print("  (building rows from the arrays for the baseline, and Decimal/dataclass output, are not timed)")

    python, why_not = (None, "--no-pymarket given") if args.no_pymarket else pymarket_python(args.pymarket_python)
    header = (
        f"{'orders':>9} {'engine s':>9} {'engine orders/s':>16} {'baseline s':>11} {'baseline orders/s':>18}"
        f" {'baseline/engine':>16} {'book s':>8} {'trades':>8} {'volume_wh':>12} {'price':>8}"
    )
    print(header)
    failures = []
    pymarket_lines = []
    pymarket_stop = why_not if python is None else ""
    for size in args.sizes:
        columns = book_columns(size, args.seed)
        if args.rows == "shuffled":
            shuffle = np.random.default_rng(args.seed + 1).permutation(size)
            columns = {name: column[shuffle] for name, column in columns.items()}
        book_s, book = timed(lambda columns=columns: Book.from_arrays(**columns), args.repeats)
        rows = list(zip(*(columns[name].tolist() for name in columns), strict=True))
        engine_s, engine = timed(lambda book=book: clear_book(book), args.repeats)
        baseline_s, baseline = timed(lambda rows=rows: walk_rows(rows), args.repeats)
        price = "-" if engine.price_scaled is None else str(price_from_scaled(engine.price_scaled))
        print(
            f"{size:>9,} {engine_s:>9.4f} {size / engine_s:>16,.0f} {baseline_s:>11.4f} {size / baseline_s:>18,.0f}"
            f" {baseline_s / engine_s:>15.1f}x {book_s:>8.4f} {engine.quantity_wh.size:>8,}"
            f" {engine.volume_wh:>12,} {price:>8}",
            flush=True,
        )
        failures += [f"{size:,}: {problem}" for problem in _disagreements(engine, baseline, columns)]
        del rows, baseline

        if pymarket_stop:
            pymarket_lines.append(f"{size:>9,} skipped: {pymarket_stop}")
        elif size > args.pymarket_max_orders:
            pymarket_lines.append(f"{size:>9,} skipped: above --pymarket-max-orders {args.pymarket_max_orders:,}")
        else:
            outcome = pymarket_run(python, columns, args.pymarket_timeout)
            if isinstance(outcome, str):
                pymarket_lines.append(f"{size:>9,} {outcome}")
                pymarket_stop = f"a smaller book already {outcome}"
            else:
                seconds = outcome["seconds"]
                pymarket_lines.append(
                    f"{size:>9,} {seconds:>10.3f} {size / seconds:>12,.0f} {seconds / engine_s:>13,.0f}x"
                    f"   traded {outcome['quantity_traded']:,.0f} Wh in {outcome['trades']:,} transactions,"
                    f" buy {outcome['price_buy']} / sell {outcome['price_sell']}"
                )

    print(f"pymarket 'huang' ({python or 'not run'}):")
    print(f"{'orders':>9} {'seconds':>10} {'orders/s':>12} {'vs engine':>14}")
    for line in pymarket_lines:
        print(line)
    if failures:
        print("CHECK FAILED: engine and baseline disagree:")
        for failure in failures:
            print("  " + failure)
        raise SystemExit(1)
    print("check: engine and baseline agree at every size on price, volume, every trade and every fill")


def _disagreements(engine: Any, baseline: Any, columns: dict[str, np.ndarray]) -> list[str]:
    problems = []
    if (engine.price_scaled, engine.volume_wh) != (baseline.price_scaled, baseline.volume_wh):
        problems.append(
            f"price/volume {engine.price_scaled}/{engine.volume_wh} vs {baseline.price_scaled}/{baseline.volume_wh}"
        )
    engine_trades = list(
        zip(
            engine.buy_order_id.tolist(),
            engine.sell_order_id.tolist(),
            engine.quantity_wh.tolist(),
            engine.buyer_price_scaled.tolist(),
            engine.seller_price_scaled.tolist(),
            strict=True,
        )
    )
    if engine_trades != baseline.trades:
        problems.append(f"trades differ ({len(engine_trades):,} vs {len(baseline.trades):,})")
    filled = {
        order_id: wh for order_id, wh in zip(engine.order_id.tolist(), engine.filled_wh.tolist(), strict=True) if wh
    }
    if filled != baseline.filled_wh:
        problems.append("fills differ")
    if (engine.bids_wh, engine.offers_wh) != (baseline.bids_wh, baseline.offers_wh):
        problems.append("side totals differ")
    if int(columns["quantity_wh"].sum()) != engine.bids_wh + engine.offers_wh:
        problems.append("side totals do not add up to the book")
    return problems


def e2e_section(args: argparse.Namespace) -> None:
    """End to end in PostgreSQL: `interval_clear`, the service the beat task and `market_clear`
    call, on an interval of `--e2e-orders` open orders: load the book, match, write trades,
    fills and the result in one transaction, and hand the events (market.cleared and one
    trade.filled per filled order) to the Redis channel layer after commit."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "energycoop.settings.test")
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/energycoop_bench")
    os.environ.setdefault("CHANNELS_PREFIX", "bench")
    import datetime as dt

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.market.choices import OrderStatus
    from apps.market.models import ClearingResult, Order, Trade
    from apps.market.services import interval_clear, interval_get_or_create

    _database_ensure(os.environ["DATABASE_URL"])
    call_command("migrate", verbosity=0)
    members = _bench_members(1000)
    listeners = _listeners_add(members[: args.e2e_listeners])
    size = args.e2e_orders
    print(f"\n== e2e: interval_clear of {size:,} orders in PostgreSQL ({connection.settings_dict['NAME']}) ==")
    print("timer covers: interval_clear() from call to return: lock, load the book, match (NumPy engine),")
    print("COPY the trades, UPDATE the orders' fills, write the result, commit, then hand market.cleared and")
    print("every trade.filled to the Redis channel layer (on_commit). Order insertion is setup, not timed.")
    print(
        f"live sockets: {len(listeners):,} of the 1,000 members have one (a channel in their private group); "
        "fills of members without a socket are not built or sent."
    )
    from apps.market.models import Interval

    # Fresh intervals every run: a day after the latest one any earlier run used.
    latest = Interval.objects.order_by("-start").values_list("start", flat=True).first()
    base = max(dt.datetime(2030, 1, 7, tzinfo=dt.UTC), (latest or dt.datetime.min.replace(tzinfo=dt.UTC)))
    base = base.replace(hour=0, minute=0) + dt.timedelta(days=1)
    seconds: list[float] = []
    for repeat in range(args.repeats):
        start = base + dt.timedelta(minutes=15 * repeat)
        interval = interval_get_or_create(start=start)
        _bench_orders(interval, members, size, seed=args.seed + repeat)
        gc.collect()
        began = time.perf_counter()
        result = interval_clear(start=start, now=start)
        seconds.append(time.perf_counter() - began)
        trades = Trade.objects.filter(interval=interval)
        bought = Order.objects.filter(interval=interval, side="buy").values_list("filled_wh", flat=True)
        sold = Order.objects.filter(interval=interval, side="sell").values_list("filled_wh", flat=True)
        traded = sum(trades.values_list("quantity_wh", flat=True))
        problems = []
        if not (traded == sum(bought) == sum(sold) == result.volume_wh):
            problems.append(f"volumes disagree: trades {traded}, bought {sum(bought)}, sold {sum(sold)}")
        if Order.objects.filter(interval=interval, status=OrderStatus.OPEN).exists():
            problems.append("orders left open")
        if ClearingResult.objects.filter(interval=interval).count() != 1:
            problems.append("not exactly one result")
        print(
            f"  run {repeat + 1}: {seconds[-1]:.3f} s  price {result.price}  volume {result.volume_wh:,} Wh  "
            f"trades {result.trades_count:,}  check: {'ok' if not problems else '; '.join(problems)}"
        )
    print(f"  median of {len(seconds)}: {statistics.median(seconds):.3f} s for {size:,} orders (target < 3 s)")
    _listeners_remove(listeners)


def _listeners_add(member_ids: list[int]) -> list[tuple[str, str]]:
    """A channel in each member's private group, as a connected socket would have."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from apps.realtime import groups

    layer = get_channel_layer()
    pairs = []
    for member_id in member_ids:
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(groups.member_group(member_id), channel)
        pairs.append((groups.member_group(member_id), channel))
    return pairs


def _listeners_remove(pairs: list[tuple[str, str]]) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    for group, channel in pairs:
        async_to_sync(layer.group_discard)(group, channel)


def _database_ensure(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _bench_members(count: int) -> list[int]:
    """`count` active members with a main meter each (created once, through the services)."""
    from apps.members.choices import MemberStatus
    from apps.members.models import Member
    from apps.members.services import member_create

    existing = list(Member.objects.filter(user__email__startswith="bench-").order_by("pk").values_list("pk", flat=True))
    for index in range(len(existing), count):
        member = member_create(email=f"bench-{index}@bench.example", status=MemberStatus.ACTIVE, email_verified=True)
        existing.append(member.pk)
    return existing[:count]


def _bench_orders(interval: Any, members: list[int], size: int, seed: int) -> None:
    """Open orders straight into the table with COPY (setup): half the members buy, half sell."""
    import datetime as dt

    from django.db import connection

    rng = np.random.default_rng(seed)
    is_buy = rng.random(size) < 0.5
    half = len(members) // 2
    member_index = rng.integers(0, half, size) + np.where(is_buy, 0, half)
    quantity = rng.integers(100, 2_000, size)
    price = rng.integers(7_000, 30_001, size)  # within the default band [0.07, 0.30]
    offsets = np.sort(rng.integers(0, 24 * 3600 * 1_000_000, size))
    opened = interval.start - dt.timedelta(hours=24)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY market_order (member_id, interval_id, side, quantity_wh, limit_price, status, filled_wh, source, "
            "submitted_at, request_hash) FROM STDIN"
        ) as copy,
    ):
        for i in range(size):
            copy.write_row(
                (
                    members[member_index[i]],
                    interval.pk,
                    "buy" if is_buy[i] else "sell",
                    int(quantity[i]),
                    f"{price[i] // 100000}.{price[i] % 100000:05d}",
                    "open",
                    0,
                    "manual",
                    opened + dt.timedelta(microseconds=int(offsets[i])),
                    "",
                )
            )


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "engine": engine_section,
    "e2e": e2e_section,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--section",
        action="append",
        choices=list(SECTIONS),
        dest="sections",
        help="run only this section (repeatable; default: all, in order)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part.replace("_", "")) for part in text.split(",")],
        default=[10_000, 100_000, 1_000_000],
        help="book sizes for the engine section, comma separated (default: 10000,100000,1000000)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure; the median is printed")
    parser.add_argument("--seed", type=int, default=20_300_101)
    parser.add_argument(
        "--rows",
        choices=["by-id", "shuffled"],
        default="by-id",
        help="row order of the books: by id, as a loader ordering by id gives (default), or shuffled",
    )
    parser.add_argument("--pymarket-python", help="interpreter with pymarket installed (default: see above)")
    parser.add_argument("--pymarket-max-orders", type=int, default=100_000, help="largest book given to pymarket")
    parser.add_argument("--pymarket-timeout", type=float, default=150.0, help="seconds before pymarket is given up")
    parser.add_argument("--no-pymarket", action="store_true", help="skip pymarket")
    parser.add_argument("--e2e-orders", type=int, default=100_000, help="orders in the end-to-end interval")
    parser.add_argument(
        "--e2e-listeners", type=int, default=100, help="members (of 1,000) with a live socket during the e2e run"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `python bench/clearing.py` from anywhere
    for name in args.sections or list(SECTIONS):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
