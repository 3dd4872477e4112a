"""Merkle proofs and the member's offline check with the standalone script (no Django)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.common.clock import format_instant
from apps.common.exceptions import Conflict
from apps.ledger import hashing
from apps.ledger.choices import CoopAccount
from apps.ledger.models import Block
from apps.ledger.selectors import member_ledger_export, merkle_proof
from apps.ledger.services import (
    TransactionSpec,
    account_for_member,
    coop_account,
    ledger_seal,
    transaction_reverse,
    transactions_post_many,
)
from tests.conftest import ROOT
from tests.factories import member_make
from tests.ledger.conftest import OCCURRED_AT, book

pytestmark = pytest.mark.django_db

SCRIPT = ROOT / "scripts" / "verify_ledger_proofs.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("verify_ledger_proofs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def community(member, member_account, other_account):
    """A settlement-like run of 70 members over two blocks (more than one run of 64 leaves each)."""
    clearing = coop_account(code=CoopAccount.P2P_CLEARING)
    fees = coop_account(code=CoopAccount.COOP_FEES)
    accounts = [account_for_member(member=member_make()) for _ in range(68)] + [member_account, other_account]

    def run(interval: int) -> None:
        transactions_post_many(
            entries=[
                TransactionSpec(
                    idempotency_key=f"settlement:{interval}:{account.code}:r1",
                    postings=[
                        (account, Decimal(f"{i}.0{interval}00"), "p2p_revenue"),
                        (clearing, -Decimal(f"{i}.0{interval}00") - Decimal("0.0100")),
                        (fees, Decimal("0.0100"), "coop_fee"),
                    ],
                    description=f"interval {interval}",
                    kind="settlement",
                    occurred_at=OCCURRED_AT,
                )
                for i, account in enumerate(accounts)
            ]
        )
        ledger_seal()

    run(1)
    run(2)
    return member


def _run_script(tmp_path, export: dict, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "ledger-proofs.json"
    path.write_text(json.dumps(export))
    # A bare interpreter in an empty directory: the script needs nothing of the project.
    return subprocess.run(
        [sys.executable, "-I", str(SCRIPT), str(path), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_merkle_proof_leads_to_the_block_root(community, member_account):
    tx = member_account.postings.order_by("transaction_id").first().transaction
    proof = merkle_proof(transaction=tx)
    block = Block.objects.get(height=proof["block"]["height"])
    assert proof["tree_size"] == block.tx_count == 70
    assert proof["block"]["block_hash"] == block.block_hash
    root = hashing.merkle_path_root(
        tx_hash_hex=tx.content_hash, leaf_index=proof["leaf_index"], tree_size=proof["tree_size"], path=proof["path"]
    )
    assert root == block.merkle_root
    unsealed = book(member_account)
    with pytest.raises(Conflict) as excinfo:
        merkle_proof(transaction=unsealed)
    assert excinfo.value.code == "not_sealed"


def test_the_export_holds_only_the_members_transactions_and_verifies_offline(community, member_account, tmp_path):
    original = member_account.postings.order_by("transaction_id").first().transaction
    transaction_reverse(transaction=original, idempotency_key="correction:1")
    ledger_seal()
    book(member_account, "0.5000")  # not sealed yet
    export = member_ledger_export(member=community)
    assert export["account"] == member_account.code
    assert len(export["transactions"]) == 4
    assert all(any(p["account"] == member_account.code for p in tx["postings"]) for tx in export["transactions"])
    other_members = {p["account"] for tx in export["transactions"] for p in tx["postings"]} - {member_account.code}
    assert all(code.startswith("coop:") for code in other_members)
    assert [b["height"] for b in export["blocks"]] == [1, 2, 3]
    assert export["head"] == export["blocks"][-1]
    assert export["transactions"][-1]["proof"] is None
    assert Decimal(export["balance"]) == sum(p.amount for p in member_account.postings.all())

    done = _run_script(tmp_path, export, "--head-hash", export["head"]["block_hash"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed." in done.stdout
    assert done.stdout.count("proof to block") == 3


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda e: e["transactions"][0]["postings"][0].update(amount="99.0000"), "do not balance"),
        (lambda e: e["transactions"][0].update(description="other"), "content hash mismatch"),
        (lambda e: e["transactions"][1]["proof"]["path"].reverse(), "Merkle proof does not lead"),
        (lambda e: e["transactions"][1]["proof"].update(leaf_index=0), "Merkle proof does not lead"),
        (lambda e: e["blocks"][0].update(merkle_root="00" * 32), "block 1: its hash does not match"),
        (lambda e: e.update(balance="1000.0000"), "stated balance"),
        (lambda e: e.update(opening_balance="5.0000"), "stated balance"),
        (lambda e: e["blocks"].pop(0), "is not in the file"),
    ],
)
def test_the_script_refuses_a_tampered_export(community, tmp_path, tamper, message):
    export = member_ledger_export(member=community)
    assert _script_module().main([str(_write(tmp_path, export))]) == 0
    bad = copy.deepcopy(export)
    tamper(bad)
    done = _run_script(tmp_path, bad)
    assert done.returncode == 1
    assert message in done.stdout, done.stdout


def test_the_script_compares_with_an_earlier_export_and_a_known_head(community, tmp_path):
    earlier = member_ledger_export(member=community)
    earlier_path = tmp_path / "earlier.json"
    earlier_path.write_text(json.dumps(earlier))
    rewritten = copy.deepcopy(earlier)
    rewritten["blocks"][0]["sealed_at"] = "2030-01-01T00:00:00.000000Z"
    done = _run_script(tmp_path, earlier, "--previous", str(earlier_path))
    assert done.returncode == 0, done.stdout
    done = _run_script(tmp_path, earlier, "--head-hash", "ab" * 32)
    assert done.returncode == 1 and "not a block of this chain" in done.stdout
    (tmp_path / "bad.json").write_text("{}")
    assert _script_module().main([str(tmp_path / "bad.json")]) == 2


def _write(tmp_path, export: dict):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    return path


def test_the_export_reads_a_bounded_number_of_rows_per_block(community, django_assert_max_num_queries):
    # account, head, transactions, postings prefetch, entries, leaf runs, blocks
    with django_assert_max_num_queries(9):
        member_ledger_export(member=community)


def test_a_member_without_bookings_gets_an_empty_export(member):
    export = member_ledger_export(member=member)
    assert export["transactions"] == [] and export["account"] is None and export["balance"] == "0.0000"


def test_the_api_serves_the_callers_own_export(api, community, member_account):
    response = api.get("/api/v1/me/ledger/proofs/")
    assert response.status_code == 200
    body = response.json()
    assert body["member_number"] == community.number
    assert len(body["transactions"]) == 2
    assert body["format"] == "energycoop-ledger-proofs/1"


def test_the_api_needs_a_token(client):
    response = client.get("/api/v1/me/ledger/proofs/")
    assert response.status_code in {401, 403}


def test_an_export_since_holds_what_was_recorded_later_and_the_opening_balance(community, member_account, tmp_path):
    before = sum(p.amount for p in member_account.postings.all())
    since = timezone.now()
    later = [book(member_account, "0.2500"), book(member_account, "-0.1000")]
    ledger_seal()
    export = member_ledger_export(member=community, since=since)
    assert [tx["id"] for tx in export["transactions"]] == [tx.pk for tx in later]
    assert export["since"] == format_instant(since)
    assert Decimal(export["opening_balance"]) == before
    assert (
        Decimal(export["balance"]) == before + Decimal("0.1500") == sum(p.amount for p in member_account.postings.all())
    )
    assert export["blocks"][0]["height"] == export["transactions"][0]["proof"]["block_height"] == 3

    done = _run_script(tmp_path, export, "--head-hash", export["head"]["block_hash"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("proof to block") == 2
    whole = member_ledger_export(member=community)
    assert whole["opening_balance"] == "0.0000" and whole["since"] is None and whole["balance"] == export["balance"]


def test_the_api_takes_since_and_refuses_a_malformed_one(api, community, member_account):
    since = timezone.now()
    book(member_account, "0.2500")
    body = api.get("/api/v1/me/ledger/proofs/", {"since": format_instant(since)}).json()
    assert len(body["transactions"]) == 1 and body["since"] == format_instant(since)
    response = api.get("/api/v1/me/ledger/proofs/", {"since": "last tuesday"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"since": ["Not a UTC instant."]}
