"""Races on PostgreSQL: real connections (threads) and real processes, killed ones included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, connections, transaction

from apps.common.exceptions import Conflict
from apps.ledger.choices import CoopAccount
from apps.ledger.models import Block, BlockEntry, Posting, Transaction
from apps.ledger.services import (
    TransactionSpec,
    coop_account,
    ledger_seal,
    ledger_seal_all,
    ledger_verify,
    transaction_post,
)
from tests.conftest import ROOT, process_env, wait_for
from tests.ledger.conftest import OCCURRED_AT, book

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` on its own database connection; the outcome lands in the returned dict."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except Exception as exc:  # handed to the test to assert on
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def _post(account, key: str, amount: str = "1.0000") -> Transaction:
    return book(account, amount, key=key)


def test_two_connections_racing_one_key_book_one_transaction(transactional_db, member_account):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    first_posted, release = threading.Event(), threading.Event()

    def first() -> Transaction:
        with transaction.atomic():
            tx = _post(member_account, "settlement:race:r1")
            first_posted.set()
            release.wait(timeout=30)
        return tx

    thread_a, a = _in_thread(first)
    assert first_posted.wait(timeout=30)
    # The second caller's INSERT waits on the first's uncommitted key ...
    thread_b, b = _in_thread(lambda: _post(member_account, "settlement:race:r1"))
    wait_for(_waiting_on_a_lock, timeout=30, message="the second insert to wait on the first")
    # ... and once the first commits, it gets the first's transaction back, not an error.
    release.set()
    thread_a.join(30)
    thread_b.join(30)
    assert "error" not in a and "error" not in b, (a, b)
    assert a["value"].pk == b["value"].pk
    assert Transaction.objects.filter(idempotency_key="settlement:race:r1").count() == 1
    assert Posting.objects.count() == 2
    assert clearing.postings.count() == 1


def test_many_connections_racing_one_key(transactional_db, member_account):
    coop_account(code=CoopAccount.P2P_CLEARING)
    barrier = threading.Barrier(6)

    def racer() -> int:
        barrier.wait(timeout=30)
        return _post(member_account, "settlement:herd:r1").pk

    runs = [_in_thread(racer) for _ in range(6)]
    for thread, _outcome in runs:
        thread.join(60)
    assert [o.get("error") for _t, o in runs] == [None] * 6
    assert len({o["value"] for _t, o in runs}) == 1
    assert Transaction.objects.count() == 1 and Posting.objects.count() == 2


def test_racing_one_key_with_different_content_is_a_conflict_for_the_loser(transactional_db, member_account):
    coop_account(code=CoopAccount.P2P_CLEARING)
    barrier = threading.Barrier(2)

    def racer(amount: str) -> Callable[[], Transaction]:
        def run() -> Transaction:
            barrier.wait(timeout=30)
            return _post(member_account, "settlement:clash:r1", amount)

        return run

    runs = [_in_thread(racer("1.0000")), _in_thread(racer("2.0000"))]
    for thread, _outcome in runs:
        thread.join(60)
    outcomes = [o for _t, o in runs]
    assert sorted("error" in o for o in outcomes) == [False, True]
    loser = next(o["error"] for o in outcomes if "error" in o)
    assert isinstance(loser, Conflict) and loser.code == "idempotency_key_reused"
    assert Transaction.objects.count() == 1


def test_concurrent_sealers_and_writers_build_one_consistent_chain(transactional_db, member_account, other_account):
    coop_account(code=CoopAccount.P2P_CLEARING)
    stop = threading.Event()

    def writer(account, prefix: str) -> int:
        n = 0
        while not stop.is_set() and n < 150:
            _post(account, f"{prefix}:{n}", "0.0100")
            n += 1
        return n

    def sealer() -> int:
        blocks = 0
        while not stop.is_set():
            blocks += ledger_seal() is not None
        return blocks

    runs = [_in_thread(lambda: writer(member_account, "w1")), _in_thread(lambda: writer(other_account, "w2"))]
    runs += [_in_thread(sealer) for _ in range(3)]
    for thread, _outcome in runs[:2]:
        thread.join(120)
    stop.set()
    for thread, _outcome in runs[2:]:
        thread.join(60)
    assert [o.get("error") for _t, o in runs] == [None] * 5
    ledger_seal_all()
    heights = list(Block.objects.order_by("height").values_list("height", flat=True))
    assert heights == list(range(1, len(heights) + 1))
    assert sum(o["value"] for _t, o in runs[2:]) + 1 >= len(heights) > 1
    assert BlockEntry.objects.count() == Transaction.objects.count() == 300
    result = ledger_verify()
    assert result.ok, result.problems


def _manage(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_seal_processes_at_once_take_turns(transactional_db, member_account):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    from apps.ledger.services import transactions_post_many

    transactions_post_many(
        entries=[
            TransactionSpec(
                idempotency_key=f"bulk:{i}",
                postings=[(member_account, Decimal("0.0001")), (clearing, Decimal("-0.0001"))],
                description="",
                kind="settlement",
                occurred_at=OCCURRED_AT,
            )
            for i in range(3000)
        ]
    )
    procs = [_manage("ledger_seal"), _manage("ledger_seal")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(o.strip().splitlines()[0].split(":")[0] for o in outputs) == ["Nothing to seal.", "Sealed block 1"]
    assert list(Block.objects.values_list("height", "tx_count")) == [(1, 3000)]
    assert ledger_verify().ok


KILLED_WRITER = """
import sys, time
import django
django.setup()
from decimal import Decimal
from django.db import transaction
from apps.ledger.store import PostgresLedgerStore
from apps.ledger.models import Account
from apps.ledger.services import TransactionSpec, transactions_post_many
from tests.ledger.conftest import OCCURRED_AT

member, clearing = Account.objects.get(pk=int(sys.argv[1])), Account.objects.get(pk=int(sys.argv[2]))
entries = [
    TransactionSpec(
        idempotency_key=f"killed:{i}",
        postings=[(member, Decimal("1.2345")), (clearing, Decimal("-1.2345"))],
        description="run killed half-way",
        kind="settlement",
        occurred_at=OCCURRED_AT,
    )
    for i in range(500)
]
if sys.argv[3] == "between-tables":
    # Stop inside the service: transactions inserted, postings not yet.
    def stall(*args, **kwargs):
        print("transactions inserted", flush=True)
        time.sleep(120)
    PostgresLedgerStore.postings_insert = stall
    transactions_post_many(entries=entries)
else:
    # Stop inside the caller's transaction, after the service returned.
    with transaction.atomic():
        transactions_post_many(entries=entries)
        print("transactions inserted", flush=True)
        time.sleep(120)
"""


@pytest.mark.parametrize("where", ["between-tables", "before-commit"])
def test_a_process_killed_mid_transaction_leaves_nothing_half_written(transactional_db, member_account, where):
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(member_account.pk), str(clearing.pk), where],
        cwd=ROOT,
        env=process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "transactions inserted", line + proc.stdout.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # PostgreSQL rolls the dead session back: no transaction, no posting, no key taken.
    assert not Transaction.objects.filter(idempotency_key__startswith="killed:").exists()
    assert not Posting.objects.exists()
    # The rerun books everything (it may wait a moment for the dead session to be reaped).
    rerun = transaction_post(
        idempotency_key="killed:0",
        postings=[(member_account, Decimal("1.2345")), (clearing, Decimal("-1.2345"))],
        description="run killed half-way",
        kind="settlement",
        occurred_at=OCCURRED_AT,
    )
    assert rerun.postings.count() == 2
    ledger_seal()
    assert ledger_verify().ok


def test_a_writer_that_commits_after_a_seal_is_sealed_by_the_next_one(transactional_db, member_account):
    coop_account(code=CoopAccount.P2P_CLEARING)
    posted, release = threading.Event(), threading.Event()

    def slow_writer() -> Transaction:
        with transaction.atomic():
            tx = _post(member_account, "slow:1")
            posted.set()
            release.wait(timeout=30)
        return tx

    thread, outcome = _in_thread(slow_writer)
    assert posted.wait(timeout=30)
    quick = _post(member_account, "quick:1")  # a higher id, committed first
    first = ledger_seal()
    assert list(first.entries.values_list("transaction_id", flat=True)) == [quick.pk]
    release.set()
    thread.join(30)
    slow = outcome["value"]
    assert slow.pk < quick.pk
    later = _post(member_account, "later:1")
    second = ledger_seal()
    assert list(second.entries.order_by("position").values_list("transaction_id", flat=True)) == [slow.pk, later.pk]
    # The bound never goes back (it moves on as the oldest running writer in the cluster does).
    assert second.pending_from_xid >= first.pending_from_xid
    assert ledger_seal() is None
    assert ledger_verify().ok
