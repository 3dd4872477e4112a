#!/usr/bin/env python3
"""Check your energycoop ledger export offline: python3 verify_ledger_proofs.py ledger-proofs.json

Needs Python 3.10+ and nothing else (no Django, no network). For every transaction in the
export it recomputes the SHA-256 of its content, checks that the postings balance, and
follows its Merkle proof up to the root in its block header; it recomputes every block
header's hash and checks that each block names the previous one, up to the head. Exit
status 0 when everything holds, 1 when anything does not (each failure is printed), 2 when
the file cannot be read. See docs/ledger-verify.md for the format and the hashing rules.

Options:
  --head-hash HASH   a head block hash you got elsewhere (e.g. from the portal on another
                     day, or from another member): it must be a block of this export's chain.
  --previous FILE    an earlier export of yours: every block and transaction present in
                     both must be identical, so history was not rewritten in between.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from decimal import Decimal
from typing import Any

FORMAT = "energycoop-ledger-proofs/1"
HASH_VERSION = 1
GENESIS_HASH = "0" * 64
AMOUNT_RE = re.compile(r"^-?[0-9]+\.[0-9]{4}$")
INSTANT_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def transaction_hash(tx: dict[str, Any]) -> str:
    content = {
        "v": HASH_VERSION,
        "key": tx["idempotency_key"],
        "kind": tx["kind"],
        "description": tx["description"],
        "occurred_at": tx["occurred_at"],
        "created_at": tx["created_at"],
        "reverses": tx["reverses"]["content_hash"] if tx.get("reverses") else None,
        "postings": [[p["account"], p["amount"], p["memo"]] for p in tx["postings"]],
    }
    return sha256_hex(canonical_json(content))


def block_hash(header: dict[str, Any]) -> str:
    fields = ("height", "previous_hash", "merkle_root", "tx_count", "sealed_at")
    return sha256_hex(canonical_json({"v": HASH_VERSION, **{name: header[name] for name in fields}}))


def merkle_path_root(tx_hash_hex: str, leaf_index: int, tree_size: int, path: list[str]) -> str | None:
    """RFC 6962 tree: leaf = H(0x00 || tx hash), node = H(0x01 || left || right); a lone last node moves up."""
    if not 0 <= leaf_index < tree_size:
        return None
    digest = hashlib.sha256(b"\x00" + bytes.fromhex(tx_hash_hex)).digest()
    index, size, steps = leaf_index, tree_size, list(path)
    while size > 1:
        if index % 2 or index + 1 < size:
            if not steps:
                return None
            sibling = bytes.fromhex(steps.pop(0))
            pair = sibling + digest if index % 2 else digest + sibling
            digest = hashlib.sha256(b"\x01" + pair).digest()
        index, size = index // 2, (size + 1) // 2
    return None if steps else digest.hex()


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, message: str) -> None:
        print(f"ok    {message}")

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"FAIL  {message}")


def check_blocks(export: dict[str, Any], report: Report) -> dict[int, dict[str, Any]]:
    headers = export.get("blocks") or []
    by_height: dict[int, dict[str, Any]] = {}
    previous: dict[str, Any] | None = None
    for header in headers:
        height = header["height"]
        if block_hash(header) != header["block_hash"]:
            report.fail(f"block {height}: its hash does not match its header")
        if previous is not None:
            if height != previous["height"] + 1:
                report.fail(f"block {height}: the chain skips from block {previous['height']}")
            elif header["previous_hash"] != previous["block_hash"]:
                report.fail(f"block {height}: previous_hash does not name block {previous['height']}")
        elif height == 1 and header["previous_hash"] != GENESIS_HASH:
            report.fail("block 1: previous_hash is not the genesis hash (64 zeros)")
        by_height[height] = header
        previous = header
    head = export.get("head")
    if head is not None and head != previous:
        report.fail("the head block is not the last block of the chain in this file")
    if headers:
        report.ok(f"blocks {headers[0]['height']}..{headers[-1]['height']}: hashes and chain links checked")
    return by_height


def check_transactions(export: dict[str, Any], blocks: dict[int, dict[str, Any]], report: Report) -> None:
    account = export.get("account")
    # An export fetched with ?since= starts from the balance of everything recorded before.
    opening = export.get("opening_balance") or "0.0000"
    if not AMOUNT_RE.match(opening):
        report.fail("the opening balance is not a 4-decimal string")
        opening = "0"
    balance = Decimal(opening)
    for tx in export.get("transactions") or []:
        label = f"transaction {tx['id']} ({tx['idempotency_key']})"
        if not (INSTANT_RE.match(tx["occurred_at"]) and INSTANT_RE.match(tx["created_at"])):
            report.fail(f"{label}: a timestamp is not in canonical form")
        if any(not AMOUNT_RE.match(p["amount"]) for p in tx["postings"]):
            report.fail(f"{label}: an amount is not a 4-decimal string")
            continue
        amounts = [Decimal(p["amount"]) for p in tx["postings"]]
        if sum(amounts, Decimal(0)) != 0 or len(amounts) < 2:
            report.fail(f"{label}: its postings do not balance")
        balance += sum((Decimal(p["amount"]) for p in tx["postings"] if p["account"] == account), Decimal(0))
        recomputed = transaction_hash(tx)
        if recomputed != tx["content_hash"]:
            report.fail(f"{label}: content hash mismatch (recomputed {recomputed})")
            continue
        proof = tx.get("proof")
        if proof is None:
            report.ok(f"{label}: content hash checked; not sealed in a block yet, no proof")
            continue
        header = blocks.get(proof["block_height"])
        if header is None:
            report.fail(f"{label}: block {proof['block_height']} is not in the file")
            continue
        if proof["tree_size"] != header["tx_count"]:
            report.fail(f"{label}: the proof's tree size differs from block {header['height']}'s tx_count")
            continue
        root = merkle_path_root(tx["content_hash"], proof["leaf_index"], proof["tree_size"], proof["path"])
        if root != header["merkle_root"]:
            report.fail(f"{label}: the Merkle proof does not lead to block {header['height']}'s root")
            continue
        report.ok(f"{label}: hash, balance and proof to block {header['height']} checked")
    stated = export.get("balance")
    if stated is not None and Decimal(stated) != balance:
        report.fail(f"the stated balance {stated} differs from the opening balance plus your postings {balance:.4f}")
    else:
        report.ok(f"balance of {account}: {balance:.4f} {export.get('currency', '')}".rstrip())


def check_against(export: dict[str, Any], previous: dict[str, Any], report: Report) -> None:
    now = {b["height"]: b["block_hash"] for b in export.get("blocks") or []}
    for header in previous.get("blocks") or []:
        if header["height"] in now and now[header["height"]] != header["block_hash"]:
            report.fail(f"block {header['height']} differs from your earlier export: history was rewritten")
    txs = {t["id"]: t["content_hash"] for t in export.get("transactions") or []}
    for tx in previous.get("transactions") or []:
        if tx["id"] not in txs:
            report.fail(f"transaction {tx['id']} of your earlier export is missing")
        elif txs[tx["id"]] != tx["content_hash"]:
            report.fail(f"transaction {tx['id']} differs from your earlier export")
    report.ok("compared with the earlier export")


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        export = json.load(handle)
    if not isinstance(export, dict) or export.get("format") != FORMAT:
        raise ValueError(f"{path} is not an energycoop ledger export ({FORMAT})")
    return export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="the JSON file downloaded from the portal")
    parser.add_argument("--head-hash", help="a head block hash obtained elsewhere")
    parser.add_argument("--previous", metavar="FILE", help="an earlier export to compare with")
    args = parser.parse_args(argv)
    try:
        export = load(args.export)
        previous = load(args.previous) if args.previous else None
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = Report()
    try:
        blocks = check_blocks(export, report)
        check_transactions(export, blocks, report)
        if args.head_hash:
            if args.head_hash.lower() in {b["block_hash"] for b in blocks.values()}:
                report.ok("the head hash you gave is a block of this chain")
            else:
                report.fail("the head hash you gave is not a block of this chain")
        if previous is not None:
            check_against(export, previous, report)
    except (KeyError, TypeError, ValueError) as exc:
        report.fail(f"the file is malformed: {exc!r}")
    if report.failures:
        print(f"\n{len(report.failures)} problem(s): do NOT trust this ledger export; contact the coop.")
        return 1
    print("\nAll checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
