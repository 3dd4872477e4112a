"""Ledger figures on PostgreSQL: one settlement-sized batch, and ledger_verify over a million transactions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/energycoop_bench_ledger .venv/bin/python bench/ledger.py

The database named by DATABASE_URL is dropped and created afresh (its name must contain
"bench"), migrated, and dropped again at the end unless --keep. Each timer says what it covers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/energycoop_bench_ledger"


def _recreate_database(url: str) -> None:
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    name = config["NAME"]
    if "bench" not in name:
        sys.exit(f"refusing to drop {name!r}: the bench database's name must contain 'bench'")
    admin = psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def _drop_database(url: str) -> None:
    import dj_database_url
    import psycopg
    from django.db import connections

    connections.close_all()
    config = dj_database_url.parse(url)
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1", user=config["USER"] or "postgres", dbname="postgres", autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')


def _setup(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "energycoop.settings.dev"
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every query in memory
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _members(count: int):
    """Bench scaffolding: members and their ledger accounts in bulk (the services make one at a time)."""
    from django.utils import timezone

    from apps.ledger.choices import AccountKind
    from apps.ledger.models import Account
    from apps.members.models import Member, User

    users = User.objects.bulk_create(
        [User(email=f"bench{i}@example.org", password="!") for i in range(count)]  # noqa: S106 - unusable
    )
    members = Member.objects.bulk_create(
        [Member(user=u, number=str(200000 + i), status="active") for i, u in enumerate(users)]
    )
    now = timezone.now()
    return Account.objects.bulk_create(
        [
            Account(code=f"member:{m.number}", kind=AccountKind.MEMBER, member=m, name=m.number, created_at=now)
            for m in members
        ]
    )


def _settlement_batch(run: str, accounts, coop, rng: random.Random):
    """One settlement-like run: per member 2-4 postings (the member and 1-3 coop accounts), balanced."""
    from apps.ledger.services import TransactionSpec

    occurred_at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    entries = []
    for account in accounts:
        legs = rng.sample(coop, rng.randint(1, 3))
        amounts = [Decimal(rng.randint(-50_000, 50_000) or 1) / 10_000 for _ in legs]
        member_amount = -sum(amounts)
        if member_amount == 0:
            amounts[0] += Decimal("0.0001")
            member_amount = -sum(amounts)
        entries.append(
            TransactionSpec(
                idempotency_key=f"settlement:{run}:{account.code}:r1",
                postings=[(account, member_amount, "settlement"), *zip(legs, amounts, strict=True)],
                description=f"settlement {run}",
                kind="settlement",
                occurred_at=occurred_at,
            )
        )
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="timed settlement batches (median reported)")
    parser.add_argument("--verify-transactions", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    _recreate_database(url)
    _setup(url)

    from django.db import connection

    from apps.ledger.choices import CoopAccount
    from apps.ledger.models import Transaction
    from apps.ledger.services import coop_account, ledger_seal_all, ledger_verify, transactions_post_many

    print(f"PostgreSQL {connection.cursor().connection.info.server_version}, {os.cpu_count()} CPUs (shared)")
    rng = random.Random(20261120)
    accounts = _members(args.members)
    coop = [coop_account(code=code) for code in CoopAccount.values]

    print(f"\n1) transactions_post_many: {args.members} transactions (2-4 postings each) in one call.")
    print("   Timer covers validation, hashing, the idempotency lookup, one COPY per table (the")
    print("   statement-level balance and reference trigger included) and the commit; not building")
    print("   the input objects. The seal timer covers appending the block over those transactions.")
    post_times, seal_times = [], []
    for run in range(args.runs):
        entries = _settlement_batch(f"timed{run}", accounts, coop, rng)
        started = time.perf_counter()
        transactions_post_many(entries=entries)
        post_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        ledger_seal_all()
        seal_times.append(time.perf_counter() - started)
        print(f"   run {run + 1}: post {post_times[-1]:.2f} s, seal {seal_times[-1]:.2f} s")
    started = time.perf_counter()
    transactions_post_many(entries=entries)
    replay = time.perf_counter() - started
    print(f"   median: post {statistics.median(post_times):.2f} s, seal {statistics.median(seal_times):.2f} s")
    print(f"   replay of the last batch (all keys exist, nothing written): {replay:.2f} s")

    total = Transaction.objects.count()
    batches = max(0, -(-(args.verify_transactions - total) // args.members))
    print(f"\n2) building {args.verify_transactions} transactions: {batches} more batches through the same")
    print("   service, each sealed as its own block (like one settlement run per interval).")
    started = time.perf_counter()
    for run in range(batches):
        transactions_post_many(entries=_settlement_batch(f"fill{run}", accounts, coop, rng))
        ledger_seal_all()
        if (run + 1) % 10 == 0:
            print(f"   {Transaction.objects.count()} transactions after {time.perf_counter() - started:.0f} s")
    total = Transaction.objects.count()
    print(f"   built in {time.perf_counter() - started:.0f} s; {total} transactions in the ledger")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
    print("   VACUUM ANALYZE done (not timed)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_posting")
        postings = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    print(f"   {postings} postings; database size {size}")

    print("\n3) ledger_verify over the whole chain. Timer covers reading every block, transaction and")
    print("   posting, recomputing every transaction hash, Merkle tree and block hash, the balance of")
    print("   each transaction and of all postings, and the account and checkpoint checks.")
    started = time.perf_counter()
    result = ledger_verify()
    seconds = time.perf_counter() - started
    checked = result.transactions_checked + result.unsealed_checked
    print(f"   {result.summary()}")
    print(f"   {checked} transactions in {seconds:.1f} s = {checked / seconds:,.0f} transactions/s")
    if not result.ok:
        sys.exit("ledger_verify FAILED")
    if not args.keep:
        _drop_database(url)


if __name__ == "__main__":
    main()
