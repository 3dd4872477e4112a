"""PostgreSQL itself refuses UPDATE, DELETE and unbalanced transactions on the ledger tables."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from apps.ledger.models import Transaction
from apps.ledger.services import ledger_seal
from tests.ledger.conftest import book

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LEDGER_TABLES = [
    "ledger_account",
    "ledger_transaction",
    "ledger_posting",
    "ledger_block",
    "ledger_blockentry",
    "ledger_verification",
]


def _sql(statement: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _raw_transaction(key: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (idempotency_key, kind, description, occurred_at, created_at, content_hash)"
            " VALUES (%s, 'manual', '', %s, %s, %s) RETURNING id",
            [key, timezone.now(), timezone.now(), "0" * 64],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def sealed(member_account):
    tx = book(member_account)
    ledger_seal()
    return tx


def test_the_tables_are_on_postgresql():
    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_update_and_delete_are_refused_on_every_ledger_table(sealed, table):
    column = "position" if table == "ledger_blockentry" else "id"
    with pytest.raises(IntegrityError, match="append-only: UPDATE refused"):
        _sql(f"UPDATE {table} SET {column} = {column}")  # noqa: S608
    with pytest.raises(IntegrityError, match="append-only: DELETE refused"):
        _sql(f"DELETE FROM {table}")  # noqa: S608
    # Refused per statement, even when no row would change.
    with pytest.raises(IntegrityError, match="append-only"):
        _sql(f"UPDATE {table} SET {column} = {column} WHERE false")  # noqa: S608


def test_sealing_never_updates_a_transaction(sealed):
    # The block membership is its own append-only row; a transaction row is written once.
    assert sealed.block_entry.block.height == 1
    with pytest.raises(IntegrityError):
        _sql("UPDATE ledger_blockentry SET position = position + 1")


def test_an_unbalanced_insert_is_refused_by_the_database(member_account, other_account):
    tx_id = _raw_transaction("raw-1")
    with pytest.raises(IntegrityError, match=f"ledger transaction {tx_id} is unbalanced: its postings sum to 0.0100"):
        _sql(
            "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo)"
            " VALUES (%s, 0, %s, 1.00, ''), (%s, 1, %s, -0.99, '')",
            [tx_id, member_account.pk, tx_id, other_account.pk],
        )


def test_one_bad_transaction_refuses_the_whole_batch_statement(member_account, other_account):
    good, bad = _raw_transaction("raw-good"), _raw_transaction("raw-bad")
    with pytest.raises(IntegrityError, match=f"transaction {bad} is unbalanced"):
        _sql(
            "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo) VALUES"
            " (%s, 0, %s, 5, ''), (%s, 1, %s, -5, ''), (%s, 0, %s, 5, ''), (%s, 1, %s, -4, '')",
            [good, member_account.pk, good, other_account.pk, bad, member_account.pk, bad, other_account.pk],
        )
    assert not Transaction.objects.get(pk=good).postings.exists()


def test_postings_split_over_statements_are_refused(member_account, other_account):
    tx_id = _raw_transaction("raw-2")
    # A lone posting, even one that a later statement would balance, is incomplete.
    with pytest.raises(IntegrityError, match="is unbalanced"):
        _sql(
            "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo) VALUES (%s, 0, %s, 1, '')",
            [tx_id, member_account.pk],
        )
    balanced_pair = (
        "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo)"
        " VALUES (%s, %s, %s, 1, ''), (%s, %s, %s, -1, '')"
    )
    _sql(balanced_pair, [tx_id, 0, member_account.pk, tx_id, 1, other_account.pk])
    # Adding a balanced pair of lines to a booked transaction: refused as incomplete (no line 0) ...
    with pytest.raises(IntegrityError, match="is incomplete"):
        _sql(balanced_pair, [tx_id, 2, member_account.pk, tx_id, 3, other_account.pk])
    # ... and lines 0 and 1 again are duplicates.
    with pytest.raises(IntegrityError, match="ledger_posting_tx_line_uniq"):
        _sql(balanced_pair, [tx_id, 0, member_account.pk, tx_id, 1, other_account.pk])


def test_the_database_refuses_a_zero_posting(member_account, other_account):
    tx_id = _raw_transaction("raw-3")
    with pytest.raises(IntegrityError, match="ledger_posting_amount_not_zero"):
        _sql(
            "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo)"
            " VALUES (%s, 0, %s, 0, ''), (%s, 1, %s, 0, '')",
            [tx_id, member_account.pk, tx_id, other_account.pk],
        )


def test_truncate_is_refused_outside_test_databases():
    # Django's test runner empties tables with TRUNCATE, so test databases (test_*) allow it;
    # everywhere else the same trigger function refuses it. Check the function's rule directly.
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_refuse_change'")
        source = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ledger_%%_no_truncate' AND NOT tgisinternal")
        assert cursor.fetchone()[0] == len(LEDGER_TABLES)
    assert "TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\\_%'" in source


def test_a_database_error_leaves_the_ledger_usable(member_account):
    with pytest.raises(DatabaseError):
        _sql("DELETE FROM ledger_posting")
    assert book(member_account).pk


def test_copy_is_checked_like_insert(member_account, other_account):
    # The service books by COPY on PostgreSQL; the statement-level triggers fire for it too.
    tx_id = _raw_transaction("raw-copy")
    copy_sql = "COPY ledger_posting (transaction_id, line, account_id, amount, memo) FROM STDIN"
    with (
        pytest.raises(IntegrityError, match=f"ledger transaction {tx_id} is unbalanced"),
        transaction.atomic(),
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(copy_sql) as copy,
    ):
        copy.write_row((tx_id, 0, member_account.pk, "1.0000", ""))
        copy.write_row((tx_id, 1, other_account.pk, "-2.0000", ""))


def test_postings_must_name_an_existing_transaction_and_account(member_account, other_account):
    # ledger_posting has no row-level foreign keys; the statement trigger checks the references.
    tx_id = _raw_transaction("raw-refs")
    pair = (
        "INSERT INTO ledger_posting (transaction_id, line, account_id, amount, memo)"
        " VALUES (%s, 0, %s, 1, ''), (%s, 1, %s, -1, '')"
    )
    with pytest.raises(IntegrityError, match="names transaction 987654321, which does not exist"):
        _sql(pair, [987654321, member_account.pk, 987654321, other_account.pk])
    with pytest.raises(IntegrityError, match="names account 987654321, which does not exist"):
        _sql(pair, [tx_id, member_account.pk, tx_id, 987654321])
