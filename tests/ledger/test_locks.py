"""Every lock the ledger takes (apps/ledger/locks.py), read from the SQL it sends."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.ledger.choices import CoopAccount
from apps.ledger.locks import SEAL_LOCK_ID, seal_lock
from apps.ledger.services import (
    coop_account,
    ledger_seal,
    ledger_verification_run,
    transaction_post,
    transaction_reverse,
)
from tests.ledger.conftest import OCCURRED_AT, book

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOCKING = ("FOR UPDATE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR KEY SHARE", "LOCK TABLE", "pg_advisory")


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """The SQL sent, savepoints left out (psycopg writes a negative parameter as ``( -1)``)."""
    sent = [q["sql"].replace("( -", "(-") for q in queries.captured_queries]
    return [sql for sql in sent if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def _locking_statements(queries: CaptureQueriesContext) -> list[str]:
    return [sql for sql in _statements(queries) if any(word in sql for word in LOCKING)]


def _advisory_locks_held() -> set[int]:
    """This session's advisory locks on 64-bit keys, as signed keys."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT classid, objid FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid() AND granted"
        )
        keys = {(int(high) << 32) | int(low) for high, low in cursor.fetchall()}
    return {key - (1 << 64) if key >= 1 << 63 else key for key in keys}


def test_the_seal_lock_key_is_fixed_by_its_name():
    # Pinned: every process, and both code versions during a deploy, must take the same lock.
    assert SEAL_LOCK_ID == -2123191358887393758
    assert int.from_bytes(hashlib.sha256(b"energycoop.ledger.seal").digest()[:8], "big", signed=True) == SEAL_LOCK_ID


def test_the_seal_lock_is_one_advisory_lock_on_its_key():
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        seal_lock()
        assert SEAL_LOCK_ID in _advisory_locks_held()
    assert _locking_statements(queries) == [f"SELECT pg_advisory_xact_lock({SEAL_LOCK_ID})"]


@pytest.mark.django_db(transaction=True)
def test_the_seal_lock_is_released_when_the_transaction_ends():
    with transaction.atomic():
        seal_lock()
        assert SEAL_LOCK_ID in _advisory_locks_held()
    assert SEAL_LOCK_ID not in _advisory_locks_held()


def test_sealing_takes_the_seal_lock_before_it_reads_the_head(member_account):
    book(member_account)
    with CaptureQueriesContext(connection) as queries:
        ledger_seal()
    statements = _statements(queries)
    assert statements[0] == f"SELECT pg_advisory_xact_lock({SEAL_LOCK_ID})"
    assert _locking_statements(queries) == [statements[0]]


def test_posting_reversing_and_verifying_take_no_lock(member_account):
    """Idempotency and single reversal rest on unique constraints, balances on sums: no row is
    a lock that would serialise writers (see apps/ledger/locks.py)."""
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    with CaptureQueriesContext(connection) as queries:
        tx = transaction_post(
            idempotency_key="locks:1",
            postings=[(member_account, Decimal("1.0000")), (clearing, Decimal("-1.0000"))],
            description="",
            kind="settlement",
            occurred_at=OCCURRED_AT,
        )
        transaction_reverse(transaction=tx, idempotency_key="locks:2")
        ledger_verification_run()
    assert _locking_statements(queries) == []
