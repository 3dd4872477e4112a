"""The storage contract: every method of the ledger store gives the same results whichever
implementation answers.

Each test runs against every implementation the database can run: on PostgreSQL (the
suite's database) both ``PostgresLedgerStore`` and ``PortableLedgerStore``; on SQLite
(``energycoop.settings.test_sqlite``, the embedded default) the portable one.
``test_the_contract_holds_on_sqlite`` runs this module there in a pytest of its own, so the
ordinary run covers the portable store on SQLite too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection

from apps.ledger import hashing
from apps.ledger.choices import CoopAccount
from apps.ledger.exceptions import LedgerAppendOnly
from apps.ledger.models import Account, Block, BlockEntry, Posting, Transaction
from apps.ledger.services import (
    TransactionSpec,
    coop_account,
    ledger_seal,
    ledger_verify,
    transaction_reverse,
    transactions_post_many,
)
from apps.ledger.store import (
    PORTABLE_CHUNK,
    LedgerStore,
    NewTransaction,
    PortableLedgerStore,
    PostgresLedgerStore,
    TxRecord,
    store,
    store_for_vendor,
)
from tests.conftest import ROOT
from tests.ledger.conftest import OCCURRED_AT, book

pytestmark = pytest.mark.django_db

ON_POSTGRES = connection.vendor == "postgresql"
IMPLEMENTATIONS: dict[str, type[LedgerStore]] = {"portable": PortableLedgerStore}
if ON_POSTGRES:
    IMPLEMENTATIONS["postgres"] = PostgresLedgerStore

# An instant with microseconds in another zone, and one on a whole second.
OCCURRED = dt.datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
CREATED = dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.UTC)
_keys = itertools.count(1)


@pytest.fixture(params=list(IMPLEMENTATIONS))
def ledger_store(request) -> LedgerStore:
    return IMPLEMENTATIONS[request.param]()


@pytest.fixture
def accounts(member_account) -> tuple[Account, Account]:
    return member_account, coop_account(code=CoopAccount.P2P_CLEARING)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _write(
    ledger_store: LedgerStore,
    accounts: tuple[Account, Account],
    amounts: Sequence[str],
    *,
    reverses: Transaction | None = None,
) -> list[Transaction]:
    """One two-line transaction per amount (the member credited, the coop debited), written by
    the store under test."""
    member, coop = accounts
    rows = []
    for _amount in amounts:
        key = f"contract:{next(_keys)}"
        reverses_id = reverses.pk if reverses is not None else None
        rows.append(NewTransaction(key, "settlement", f"about {key}", OCCURRED, CREATED, reverses_id, _hash(key)))
    txs = ledger_store.transactions_insert(rows)
    ledger_store.postings_insert(
        (tx.pk, line, account.pk, value, memo)
        for tx, amount in zip(txs, amounts, strict=True)
        for line, (account, value, memo) in enumerate(
            [(member, Decimal(amount), "p2p_revenue"), (coop, -Decimal(amount), "")]
        )
    )
    return txs


def _block(height: int, entries: list[tuple[int, str]], ledger_store: LedgerStore) -> Block:
    block = Block(
        height=height,
        previous_hash=hashing.GENESIS_HASH,
        merkle_root=_hash(f"root {height}"),
        tx_count=len(entries),
        sealed_at=CREATED,
        block_hash=_hash(f"block {height}"),
        merkle_nodes=b"",
    )
    block.save()
    ledger_store.block_entries_insert(block_id=block.pk, entries=entries)
    return block


def _record(tx: Transaction, *, reverses: Transaction | None = None) -> TxRecord:
    return TxRecord(
        tx.pk,
        tx.idempotency_key,
        "settlement",
        f"about {tx.idempotency_key}",
        "2026-11-20T09:00:00.123456Z",
        "2026-11-21T08:30:00.000000Z",
        _hash(tx.idempotency_key),
        _hash(reverses.idempotency_key) if reverses is not None else None,
    )


def _postings(tx: Transaction, accounts: tuple[Account, Account], amount: str) -> list[tuple[int, int, str, str]]:
    canonical = hashing.amount_canonical(Decimal(amount))
    negated = hashing.amount_canonical(-Decimal(amount))
    return [(0, accounts[0].pk, canonical, "p2p_revenue"), (1, accounts[1].pk, negated, "")]


# --- Writes ------------------------------------------------------------------------------------


def test_transactions_insert_returns_them_saved_in_the_order_given(ledger_store, accounts):
    first = _write(ledger_store, accounts, ["1.2300"])[0]
    txs = _write(ledger_store, accounts, ["2", "0.0001", "1000000.5"])
    reversal = _write(ledger_store, accounts, ["-1.2300"], reverses=first)[0]
    assert [tx.idempotency_key for tx in txs] == sorted((tx.idempotency_key for tx in txs), key=lambda k: int(k[9:]))
    assert [tx.pk for tx in [first, *txs, reversal]] == sorted(tx.pk for tx in [first, *txs, reversal])
    fields = ["pk", "idempotency_key", "kind", "description", "occurred_at", "created_at", "reverses_id"]
    fields.append("content_hash")
    for tx in [first, *txs, reversal]:
        stored = Transaction.objects.get(pk=tx.pk)
        assert [getattr(tx, f) for f in fields] == [getattr(stored, f) for f in fields]
        assert not tx._state.adding
        with pytest.raises(LedgerAppendOnly):
            tx.save()  # saved: the model refuses to write it again
    assert reversal.reverses_id == first.pk
    assert first.occurred_at == OCCURRED


def test_postings_insert_writes_every_line_from_an_iterable(ledger_store, accounts):
    txs = _write(ledger_store, accounts, ["1.2300", "0.0001"])
    rows = Posting.objects.filter(transaction__in=txs).order_by("transaction_id", "line")
    assert list(rows.values_list("transaction_id", "line", "account_id", "amount", "memo")) == [
        (txs[0].pk, 0, accounts[0].pk, Decimal("1.2300"), "p2p_revenue"),
        (txs[0].pk, 1, accounts[1].pk, Decimal("-1.2300"), ""),
        (txs[1].pk, 0, accounts[0].pk, Decimal("0.0001"), "p2p_revenue"),
        (txs[1].pk, 1, accounts[1].pk, Decimal("-0.0001"), ""),
    ]


def test_pending_for_seal_and_block_entries_insert(ledger_store, accounts):
    assert ledger_store.pending_for_seal(from_xid=None, limit=10)[0] == []
    txs = _write(ledger_store, accounts, ["1", "2", "3"])
    expected = [(tx.pk, tx.content_hash) for tx in txs]
    pending, bound = ledger_store.pending_for_seal(from_xid=None, limit=10)
    assert [tuple(row) for row in pending] == expected
    # A block cut short by the limit keeps the bound it was given.
    short, short_bound = ledger_store.pending_for_seal(from_xid=None, limit=2)
    assert ([tuple(row) for row in short], short_bound) == (expected[:2], None)
    # The bound handed back still sees everything not sealed.
    assert [tuple(row) for row in ledger_store.pending_for_seal(from_xid=bound, limit=10)[0]] == expected

    block = _block(1, expected[:2], ledger_store)
    entries = BlockEntry.objects.order_by("position").values_list(
        "transaction_id", "block_id", "position", "content_hash"
    )
    assert list(entries) == [
        (txs[0].pk, block.pk, 0, txs[0].content_hash),
        (txs[1].pk, block.pk, 1, txs[1].content_hash),
    ]
    assert [tuple(row) for row in ledger_store.pending_for_seal(from_xid=bound, limit=10)[0]] == expected[2:]
    later = _write(ledger_store, accounts, ["4"])[0]
    assert [tuple(row) for row in ledger_store.pending_for_seal(from_xid=bound, limit=10)[0]] == [
        expected[2],
        (later.pk, later.content_hash),
    ]


# --- Reads for booking ------------------------------------------------------------------------


def test_account_codes_of_those_that_exist(ledger_store, accounts):
    member, coop = accounts
    assert ledger_store.account_codes([]) == {}
    unknown = list(range(10**12, 10**12 + PORTABLE_CHUNK + 10))  # more than one portable chunk
    assert ledger_store.account_codes([member.pk, *unknown, coop.pk]) == {member.pk: member.code, coop.pk: coop.code}


def test_keys_taken(ledger_store, accounts):
    tx = _write(ledger_store, accounts, ["1"])[0]
    assert ledger_store.keys_taken([]) is False
    assert ledger_store.keys_taken(["contract:none"]) is False
    assert ledger_store.keys_taken(["contract:none", tx.idempotency_key]) is True


def test_transactions_by_key(ledger_store, accounts):
    txs = _write(ledger_store, accounts, ["1", "2"])
    assert ledger_store.transactions_by_key([]) == {}
    found = ledger_store.transactions_by_key([txs[1].idempotency_key, "contract:none", txs[0].idempotency_key])
    assert found == {tx.idempotency_key: tx for tx in txs}
    assert all(isinstance(tx, Transaction) and tx.content_hash == _hash(key) for key, tx in found.items())


# --- Reads for verification ---------------------------------------------------------------------


@pytest.fixture
def sealed_and_not(ledger_store, accounts):
    """Two blocks (two transactions, then a reversal) and two unsealed transactions."""
    first, second = _write(ledger_store, accounts, ["1.2300", "1000000.0001"])
    reversal = _write(ledger_store, accounts, ["-1.2300"], reverses=first)[0]
    unsealed = _write(ledger_store, accounts, ["0.0001", "42"])
    one = _block(1, [(first.pk, first.content_hash), (second.pk, second.content_hash)], ledger_store)
    two = _block(2, [(reversal.pk, reversal.content_hash)], ledger_store)
    return {"txs": [first, second, reversal, *unsealed], "blocks": [one, two]}


def test_block_transactions_in_position_order_with_canonical_instants(ledger_store, sealed_and_not):
    first, second, reversal, *_ = sealed_and_not["txs"]
    one, two = sealed_and_not["blocks"]
    assert ledger_store.block_transactions(block_id=one.pk, from_position=0, limit=10) == [
        (0, first.content_hash, _record(first)),
        (1, second.content_hash, _record(second)),
    ]
    assert ledger_store.block_transactions(block_id=one.pk, from_position=1, limit=10) == [
        (1, second.content_hash, _record(second))
    ]
    assert ledger_store.block_transactions(block_id=one.pk, from_position=0, limit=1) == [
        (0, first.content_hash, _record(first))
    ]
    assert ledger_store.block_transactions(block_id=two.pk, from_position=0, limit=10) == [
        (0, reversal.content_hash, _record(reversal, reverses=first))
    ]
    assert ledger_store.block_transactions(block_id=two.pk, from_position=1, limit=10) == []


def test_block_postings_by_transaction_with_canonical_amounts(ledger_store, accounts, sealed_and_not):
    first, second, reversal, *_ = sealed_and_not["txs"]
    one, two = sealed_and_not["blocks"]
    assert ledger_store.block_postings(block_id=one.pk, from_position=0, to_position=1) == {
        first.pk: _postings(first, accounts, "1.2300"),
        second.pk: _postings(second, accounts, "1000000.0001"),
    }
    assert ledger_store.block_postings(block_id=one.pk, from_position=1, to_position=1) == {
        second.pk: _postings(second, accounts, "1000000.0001")
    }
    assert ledger_store.block_postings(block_id=two.pk, from_position=0, to_position=0) == {
        reversal.pk: _postings(reversal, accounts, "-1.2300")
    }
    assert ledger_store.block_postings(block_id=two.pk, from_position=1, to_position=5) == {}


def test_unsealed_transactions_and_postings(ledger_store, accounts, sealed_and_not):
    txs = sealed_and_not["txs"]
    third, fourth = txs[3:]
    assert ledger_store.unsealed_transactions(after_id=0, limit=10) == [_record(third), _record(fourth)]
    assert ledger_store.unsealed_transactions(after_id=0, limit=1) == [_record(third)]
    assert ledger_store.unsealed_transactions(after_id=third.pk, limit=10) == [_record(fourth)]
    assert ledger_store.unsealed_transactions(after_id=fourth.pk, limit=10) == []
    assert ledger_store.unsealed_postings(first_id=txs[0].pk, last_id=fourth.pk) == {
        third.pk: _postings(third, accounts, "0.0001"),
        fourth.pk: _postings(fourth, accounts, "42"),
    }
    assert ledger_store.unsealed_postings(first_id=fourth.pk, last_id=fourth.pk) == {
        fourth.pk: _postings(fourth, accounts, "42")
    }


def test_block_entry_counts(ledger_store, sealed_and_not):
    one, two = sealed_and_not["blocks"]
    assert ledger_store.block_entry_counts(min_block_id=None) == {}
    assert ledger_store.block_entry_counts(min_block_id=one.pk) == {one.pk: 2, two.pk: 1}
    assert ledger_store.block_entry_counts(min_block_id=two.pk) == {two.pk: 1}


def _skew_amount(tx: Transaction, *, line: int, amount: str) -> None:
    """Change a posting the way an intruder with the table owner's rights could (triggers off)."""
    with connection.cursor() as cursor:
        if ON_POSTGRES:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE ledger_posting SET amount = %s WHERE transaction_id = %s AND line = %s",
            [Decimal(amount), tx.pk, line],
        )
        if ON_POSTGRES:
            cursor.execute("ALTER TABLE ledger_posting ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_postings_total(ledger_store, accounts):
    assert ledger_store.postings_total() == Decimal(0)
    assert isinstance(ledger_store.postings_total(), Decimal)
    txs = _write(ledger_store, accounts, ["1.2345", "0.0001", "1000000.0001"])
    assert ledger_store.postings_total() == Decimal(0)
    _skew_amount(txs[0], line=1, amount="-1.2344")
    assert ledger_store.postings_total() == Decimal("0.0001")


def test_snapshot_runs_its_body_in_a_transaction(ledger_store, accounts):
    tx = _write(ledger_store, accounts, ["1"])[0]
    with ledger_store.snapshot():
        assert connection.in_atomic_block
        assert ledger_store.unsealed_transactions(after_id=0, limit=10) == [_record(tx)]


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's snapshot")
def test_postgres_snapshot_is_repeatable_read_and_read_only(transactional_db):
    with PostgresLedgerStore().snapshot(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "repeatable read"
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone()[0] == "on"
    with pytest.raises(DatabaseError, match="read-only"), PostgresLedgerStore().snapshot():
        Account(code="coop:x", kind="coop", name="x", created_at=CREATED).save()


# --- One store per vendor, and the services on each --------------------------------------------


def test_store_is_picked_by_vendor_once():
    assert isinstance(store_for_vendor("postgresql"), PostgresLedgerStore)
    assert isinstance(store_for_vendor("sqlite"), PortableLedgerStore)
    assert store_for_vendor("postgresql") is store_for_vendor("postgresql")
    assert type(store()) is (PostgresLedgerStore if ON_POSTGRES else PortableLedgerStore)
    assert store() is store()


def test_the_services_book_seal_and_verify_on_each_store(ledger_store, accounts, monkeypatch):
    monkeypatch.setattr("apps.ledger.store.store_for_vendor", lambda vendor: ledger_store)
    member, coop = accounts
    first = book(member, "1.2345")
    transactions_post_many(
        entries=[
            TransactionSpec(
                idempotency_key=f"many:{i}",
                postings=[(member, Decimal(i + 1)), (coop, -Decimal(i + 1), "p2p_cost")],
                description="",
                kind="settlement",
                occurred_at=OCCURRED_AT,
            )
            for i in range(3)
        ]
    )
    transaction_reverse(transaction=first, idempotency_key="undo:1")
    assert ledger_seal(max_transactions=2).tx_count == 2
    assert ledger_seal().tx_count == 3
    book(member, "0.0001")  # left unsealed
    result = ledger_verify()
    assert result.ok, result.problems
    assert (result.blocks_checked, result.transactions_checked, result.unsealed_checked) == (2, 5, 1)


@pytest.mark.skipif(not ON_POSTGRES, reason="both implementations run on PostgreSQL only")
def test_both_implementations_read_the_same_records(accounts):
    member, _coop = accounts
    txs = [book(member, amount) for amount in ["1.2345", "-0.0001", "1000000", "7.5"]]
    transaction_reverse(transaction=txs[0], idempotency_key="undo:1")
    block = ledger_seal(max_transactions=3)
    book(member, "2")
    fast, portable = PostgresLedgerStore(), PortableLedgerStore()
    for method, kwargs in [
        ("block_transactions", {"block_id": block.pk, "from_position": 0, "limit": 10}),
        ("block_postings", {"block_id": block.pk, "from_position": 0, "to_position": 10}),
        ("unsealed_transactions", {"after_id": 0, "limit": 10}),
        ("unsealed_postings", {"first_id": 0, "last_id": 10**9}),
        ("block_entry_counts", {"min_block_id": block.pk}),
        ("postings_total", {}),
        ("pending_for_seal", {"from_xid": None, "limit": 10}),
    ]:
        expected, got = getattr(fast, method)(**kwargs), getattr(portable, method)(**kwargs)
        if method == "pending_for_seal":  # the bound is PostgreSQL's own bookkeeping
            expected, got = [tuple(r) for r in expected[0]], [tuple(r) for r in got[0]]
        assert got == expected, method
    ids = [tx.pk for tx in Transaction.objects.all()]
    keys = [tx.idempotency_key for tx in Transaction.objects.all()]
    assert portable.account_codes(ids) == fast.account_codes(ids)
    assert portable.transactions_by_key(keys) == fast.transactions_by_key(keys)


# --- The portable store on SQLite --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not ON_POSTGRES, reason="starts the SQLite run from the PostgreSQL one")
def test_the_contract_holds_on_sqlite():
    """This module again, on SQLite (the embedded default): every contract test passes there."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX"}}
    env["DJANGO_SETTINGS_MODULE"] = "energycoop.settings.test_sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-v", "-p", "no:randomly"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    contract = {
        name
        for name, test in globals().items()
        if name.startswith("test_") and "ledger_store" in inspect.signature(test).parameters
    }
    assert set(re.findall(r"::(test_\w+)\[portable\] PASSED", proc.stdout)) == contract, proc.stdout
    assert "[postgres]" not in proc.stdout, proc.stdout
    # It ran on SQLite: this test skipped itself there (-ra lists why).
    assert "starts the SQLite run from the PostgreSQL one" in proc.stdout, proc.stdout
