"""ledger_verify, sealing and the verification checkpoints; tampering is found and named."""

from __future__ import annotations

import itertools
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from apps.ledger import hashing
from apps.ledger.choices import CoopAccount
from apps.ledger.models import Block, BlockEntry, Transaction, Verification
from apps.ledger.services import (
    coop_account,
    ledger_seal,
    ledger_seal_all,
    ledger_verification_run,
    ledger_verify,
    transaction_reverse,
)
from tests.factories import member_make
from tests.ledger.conftest import book

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(member_account, other_account):
    """Three sealed blocks and one unsealed transaction, with a reversal in the chain."""
    txs = [book(member_account, "1.0000"), book(other_account, "-2.5000")]
    ledger_seal()
    txs += [book(member_account, "0.3333", counter=coop_account(code=CoopAccount.ROUNDING))]
    txs.append(transaction_reverse(transaction=txs[0], idempotency_key="rev-1"))
    ledger_seal()
    txs += [book(other_account, str(i)) for i in range(1, 70)]  # more than one run of 64 leaves
    ledger_seal()
    txs.append(book(member_account, "9.9999"))
    return txs


def _tamper(table: str, statement: str, params: list) -> None:
    """Change a row the way an intruder with the table owner's rights could (triggers off)."""
    with connection.cursor() as cursor:
        # The test's transaction holds deferred foreign-key checks; ALTER TABLE needs them done.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(statement, params)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_sealing_chains_blocks_over_pending_transactions(ledger):
    blocks = list(Block.objects.order_by("height"))
    assert [b.height for b in blocks] == [1, 2, 3]
    assert [b.tx_count for b in blocks] == [2, 2, 69]
    assert blocks[0].previous_hash == hashing.GENESIS_HASH
    assert all(b.previous_hash == a.block_hash for a, b in itertools.pairwise(blocks))
    entries = list(BlockEntry.objects.filter(block=blocks[2]).order_by("position"))
    assert [e.transaction_id for e in entries] == sorted(e.transaction_id for e in entries)
    assert blocks[2].merkle_root == hashing.merkle_root([e.content_hash for e in entries])
    assert ledger_seal() is not None  # the unsealed tail
    assert ledger_seal() is None


def test_seal_splits_a_big_backlog_into_blocks(member_account):
    for i in range(5):
        book(member_account, str(i + 1))
    first = ledger_seal(max_transactions=2)
    assert first.tx_count == 2
    rest = ledger_seal_all()
    assert [b.tx_count for b in rest] == [3]


def test_an_intact_ledger_verifies(ledger):
    result = ledger_verify()
    assert result.ok, result.problems
    assert (result.blocks_checked, result.transactions_checked, result.unsealed_checked) == (3, 73, 1)
    assert result.to_height == 3 and result.head_hash == Block.objects.get(height=3).block_hash
    assert result.summary().startswith("Ledger OK: blocks 1..3")


def _posting_id(tx: Transaction, line: int = 0) -> int:
    return tx.postings.get(line=line).pk


TAMPERING = {
    "posting amount": lambda txs: (
        "ledger_posting",
        "UPDATE ledger_posting SET amount = amount + 1 WHERE id = %s",
        [_posting_id(txs[2])],
        txs[2],
    ),
    "balanced change of two postings": lambda txs: (
        "ledger_posting",
        "UPDATE ledger_posting SET amount = amount + CASE line WHEN 0 THEN 1 ELSE -1 END WHERE transaction_id = %s",
        [txs[10].pk],
        txs[10],
    ),
    "posting moved to another account": lambda txs: (
        "ledger_posting",
        "UPDATE ledger_posting SET account_id = (SELECT id FROM ledger_account WHERE code = 'coop:rounding')"
        " WHERE id = %s",
        [_posting_id(txs[1], 1)],
        txs[1],
    ),
    "posting deleted": lambda txs: (
        "ledger_posting",
        "DELETE FROM ledger_posting WHERE id = %s",
        [_posting_id(txs[30], 1)],
        txs[30],
    ),
    "description": lambda txs: (
        "ledger_transaction",
        "UPDATE ledger_transaction SET description = 'nothing to see' WHERE id = %s",
        [txs[0].pk],
        txs[0],
    ),
    "created_at": lambda txs: (
        "ledger_transaction",
        "UPDATE ledger_transaction SET created_at = created_at - interval '1 day' WHERE id = %s",
        [txs[3].pk],
        txs[3],
    ),
    "stored hash": lambda txs: (
        "ledger_transaction",
        "UPDATE ledger_transaction SET content_hash = %s WHERE id = %s",
        ["ab" * 32, txs[40].pk],
        txs[40],
    ),
    "sealed leaf hash": lambda txs: (
        "ledger_blockentry",
        "UPDATE ledger_blockentry SET content_hash = %s WHERE transaction_id = %s",
        ["cd" * 32, txs[50].pk],
        txs[50],
    ),
    "unsealed transaction": lambda txs: (
        "ledger_posting",
        "UPDATE ledger_posting SET amount = -amount WHERE transaction_id = %s",
        [txs[-1].pk],
        txs[-1],
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_with_a_row_is_found_and_the_transaction_named(ledger, case):
    table, statement, params, victim = TAMPERING[case](ledger)
    assert ledger_verify().ok
    _tamper(table, statement, params)
    result = ledger_verify()
    assert not result.ok
    assert result.first_broken_transaction_id == victim.pk, result.problems
    assert f"first broken transaction id={victim.pk}" in result.summary()
    err = StringIO()
    with pytest.raises(CommandError, match=f"first broken transaction id={victim.pk}"):
        call_command("ledger_verify", stdout=StringIO(), stderr=err)
    assert f"transaction {victim.pk}" in err.getvalue()


def test_a_consistently_forged_transaction_is_caught_by_its_sealed_hash(ledger):
    victim = ledger[4]
    forged = hashing.transaction_content(
        idempotency_key=victim.idempotency_key,
        kind=victim.kind,
        description="forged",
        occurred_at=hashing.instant_canonical(victim.occurred_at),
        created_at=hashing.instant_canonical(Transaction.objects.get(pk=victim.pk).created_at),
        reverses_hash=None,
        postings=[(p.account.code, hashing.amount_canonical(p.amount), p.memo) for p in victim.postings.all()],
    )
    _tamper(
        "ledger_transaction",
        "UPDATE ledger_transaction SET description = 'forged', content_hash = %s WHERE id = %s",
        [hashing.transaction_hash(forged), victim.pk],
    )
    result = ledger_verify()
    assert result.first_broken_transaction_id == victim.pk
    assert any("differs from the hash sealed" in p for p in result.problems)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE ledger_block SET merkle_root = %s WHERE height = 2", "Merkle root"),
        ("UPDATE ledger_block SET previous_hash = %s WHERE height = 2", "previous_hash"),
        ("UPDATE ledger_block SET block_hash = %s WHERE height = 2", "previous_hash does not match"),
        ("UPDATE ledger_block SET merkle_nodes = decode(%s, 'hex') WHERE height = 3", "upper Merkle nodes"),
    ],
)
def test_tampering_with_a_block_is_found_and_the_block_named(ledger, statement, message):
    _tamper("ledger_block", statement, ["ef" * 32])
    result = ledger_verify()
    assert not result.ok and result.first_broken_block_height in {2, 3}
    assert any(message in p for p in result.problems), result.problems


def test_reassigning_an_account_to_another_member_is_found(ledger, member_account):
    intruder = member_make()
    _tamper(
        "ledger_account", "UPDATE ledger_account SET member_id = %s WHERE id = %s", [intruder.pk, member_account.pk]
    )
    result = ledger_verify()
    assert not result.ok
    assert any(f"account {member_account.pk}" in p for p in result.problems)


def test_the_command_prints_a_summary_and_records_a_checkpoint(ledger):
    out = StringIO()
    call_command("ledger_verify", stdout=out)
    assert out.getvalue().startswith("Ledger OK: blocks 1..3 (3 blocks, 73 sealed and 1 unsealed transactions)")
    checkpoint = Verification.objects.get()
    assert checkpoint.ok and checkpoint.to_height == 3
    out = StringIO()
    call_command("ledger_verify", "--since-last", "--no-record", stdout=out)
    assert "no new blocks" in out.getvalue()
    assert Verification.objects.count() == 1


def test_ledger_seal_command(member_account):
    out = StringIO()
    call_command("ledger_seal", stdout=out)
    assert out.getvalue().strip() == "Nothing to seal."
    book(member_account)
    out = StringIO()
    call_command("ledger_seal", stdout=out)
    assert out.getvalue().startswith("Sealed block 1: 1 transactions")


def test_the_scheduled_check_continues_from_the_last_verified_block(ledger, member_account):
    first = ledger_verification_run()
    assert first.ok and first.full and (first.from_height, first.to_height) == (1, 3)
    ledger_seal()
    book(member_account, "0.0001")
    ledger_seal()
    second = ledger_verification_run()
    assert second.ok and not second.full
    assert (second.from_height, second.to_height, second.blocks_checked) == (4, 5, 2)
    # Rewriting the block the last check ended on is noticed by the next incremental check.
    _tamper("ledger_block", "UPDATE ledger_block SET block_hash = %s WHERE height = 5", ["12" * 32])
    third = ledger_verification_run()
    assert not third.ok and third.first_broken_block_height == 5


@pytest.mark.postgres
def test_a_failed_check_alerts_operators_by_log_and_email(ledger, settings, caplog, django_capture_on_commit_callbacks):
    settings.ADMINS = [("Ops", "ops@example.org")]
    operator = member_make(role="operator")
    _tamper("ledger_posting", "UPDATE ledger_posting SET amount = 7 WHERE id = %s", [_posting_id(ledger[5])])
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = ledger_verification_run()
    assert not checkpoint.ok and checkpoint.first_broken_transaction_id == ledger[5].pk
    assert any(r.levelname == "ERROR" and f"id={ledger[5].pk}" in r.getMessage() for r in caplog.records)
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {"ops@example.org", operator.user.email}
    assert f"id={ledger[5].pk}" in mail.outbox[0].body
    # The next run starts again from the last good checkpoint, so it keeps alerting.
    with django_capture_on_commit_callbacks(execute=True):
        assert not ledger_verification_run().ok
    assert len(mail.outbox) == 2


def test_the_checkpoints_are_anchors_for_a_full_check(ledger):
    ledger_verification_run()
    # Recompute block 3 completely after changing it: its own hashes agree again, but the
    # checkpoint remembers the old head.
    block = Block.objects.get(height=3)
    header = hashing.block_header(
        height=3,
        previous_hash=block.previous_hash,
        merkle_root=block.merkle_root,
        tx_count=block.tx_count,
        sealed_at="2030-01-01T00:00:00.000000Z",
    )
    _tamper(
        "ledger_block",
        "UPDATE ledger_block SET sealed_at = '2030-01-01T00:00:00Z', block_hash = %s WHERE height = 3",
        [hashing.block_hash(header)],
    )
    result = ledger_verify()
    assert not result.ok and result.first_broken_block_height == 3
    assert any("earlier verification recorded" in p for p in result.problems)


def test_the_beat_schedule_runs_sealing_and_verification_with_expiry():
    from energycoop.schedules import beat_schedule

    schedule = beat_schedule()
    assert "common-heartbeat" in schedule
    tasks = {entry["task"] for entry in schedule.values()}
    assert {"apps.ledger.tasks.seal_pending", "apps.ledger.tasks.verify"} <= tasks
    assert all(entry["options"]["expires"] for entry in schedule.values())


def test_tasks_seal_and_verify(member_account):
    from apps.ledger import tasks

    book(member_account, "1.5")
    assert tasks.seal_pending() == 1
    assert tasks.verify() is True
    assert tasks.verify(full=True) is True
    assert Verification.objects.count() == 2


def test_balances_hold_after_a_reversal_and_correction(member, member_account):
    original = book(member_account, "3.0000", key="settlement:x:r1")
    transaction_reverse(transaction=original, idempotency_key="settlement:x:r1:reversal")
    book(member_account, "2.9000", key="settlement:x:r2")
    ledger_seal()
    assert ledger_verify().ok
    assert sum(p.amount for p in member_account.postings.all()) == Decimal("2.9000")
