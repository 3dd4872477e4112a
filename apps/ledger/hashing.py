"""The ledger's hashes: canonical content, transaction and block hashes, Merkle trees and proofs.

Pure functions on plain data, no ORM, so that the services, ``ledger_verify`` and the
members' offline script (``scripts/verify_ledger_proofs.py``, which re-implements this file
without Django) agree byte for byte. docs/ledger-verify.md is the written specification.

- Canonical JSON: keys sorted, no whitespace, ASCII only (``\\uXXXX`` escapes), UTF-8 bytes.
- A transaction's hash is SHA-256 of the canonical JSON of :func:`transaction_content`.
- A block's Merkle tree is RFC 6962's (Certificate Transparency): leaf = SHA-256(0x00 ||
  transaction hash), node = SHA-256(0x01 || left || right), the leaves in transaction id
  order; an odd node at the end of a level moves up unchanged, which gives the same root
  as RFC 6962's split at the largest power of two.
- A block's hash is SHA-256 of the canonical JSON of :func:`block_header`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _json_str  # the C encoder json.dumps uses
from typing import Any

from apps.common.units import MONEY_PLACES

HASH_VERSION = 1
GENESIS_HASH = "0" * 64
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def instant_canonical(value: dt.datetime) -> str:
    """An aware datetime as UTC with exactly six fractional digits and a ``Z``."""
    if value.tzinfo is None:
        raise ValueError("ledger instants are aware datetimes")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def amount_canonical(value: Decimal) -> str:
    """A 4-decimal amount as a plain string: ``-12.3400``."""
    return format(value.quantize(MONEY_PLACES), "f")


def transaction_content(
    *,
    idempotency_key: str,
    kind: str,
    description: str,
    occurred_at: str,
    created_at: str,
    reverses_hash: str | None,
    postings: Sequence[tuple[str, str, str]],
) -> dict[str, Any]:
    """What a transaction's hash covers: every column of its row but the id, and its postings.

    ``postings`` are (account code, amount, memo) in line order. Instants and amounts are
    already canonical strings (:func:`instant_canonical`, :func:`amount_canonical`). A
    reversal names the hash of the transaction it reverses. The row id stays out: the
    position in a block's Merkle tree already fixes the order.
    """
    return {
        "v": HASH_VERSION,
        "key": idempotency_key,
        "kind": kind,
        "description": description,
        "occurred_at": occurred_at,
        "created_at": created_at,
        "reverses": reverses_hash,
        "postings": [[account, amount, memo] for account, amount, memo in postings],
    }


def transaction_hash(content: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(content))


def transaction_digest(
    *,
    idempotency_key: str,
    kind: str,
    description: str,
    occurred_at: str,
    created_at: str,
    reverses_hash: str | None,
    postings: Sequence[tuple[str, str, str]],
) -> str:
    """``transaction_hash(transaction_content(...))``, twice as fast, for posting and verifying.

    Writes the very bytes ``canonical_json`` would (keys in sorted order, the same C string
    encoder) without building the dict; tests/ledger/test_hashing.py holds it to the reference.
    """
    lines = ",".join(
        f"[{_json_str(account)},{_json_str(amount)},{_json_str(memo)}]" for account, amount, memo in postings
    )
    reverses = "null" if reverses_hash is None else _json_str(reverses_hash)
    text = (
        f'{{"created_at":{_json_str(created_at)},"description":{_json_str(description)},'
        f'"key":{_json_str(idempotency_key)},"kind":{_json_str(kind)},"occurred_at":{_json_str(occurred_at)},'
        f'"postings":[{lines}],"reverses":{reverses},"v":{HASH_VERSION}}}'
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def block_header(*, height: int, previous_hash: str, merkle_root: str, tx_count: int, sealed_at: str) -> dict[str, Any]:
    return {
        "v": HASH_VERSION,
        "height": height,
        "previous_hash": previous_hash,
        "merkle_root": merkle_root,
        "tx_count": tx_count,
        "sealed_at": sealed_at,
    }


def block_hash(header: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(header))


def _leaf(tx_hash_hex: str) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + bytes.fromhex(tx_hash_hex)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _level_up(level: list[bytes]) -> list[bytes]:
    upper = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        upper.append(level[-1])
    return upper


def _levels(bottom: list[bytes]) -> list[list[bytes]]:
    levels = [bottom]
    while len(levels[-1]) > 1:
        levels.append(_level_up(levels[-1]))
    return levels


def _path(levels: list[list[bytes]], index: int) -> list[str]:
    path: list[str] = []
    for level in levels[:-1]:
        if index % 2:
            path.append(level[index - 1].hex())
        elif index + 1 < len(level):
            path.append(level[index + 1].hex())
        index //= 2
    return path


def merkle_root(tx_hashes: Sequence[str]) -> str:
    """The root of a block's transaction hashes (in transaction id order)."""
    if not tx_hashes:
        return sha256_hex(b"")
    return _levels([_leaf(h) for h in tx_hashes])[-1][0].hex()


def merkle_path(tx_hashes: Sequence[str], leaf_index: int) -> list[str]:
    """The sibling hashes from the leaf up to the root (a node that moves up alone adds none)."""
    return _path(_levels([_leaf(h) for h in tx_hashes]), leaf_index)


def merkle_path_root(*, tx_hash_hex: str, leaf_index: int, tree_size: int, path: Sequence[str]) -> str | None:
    """The root that ``path`` leads to from the leaf, or None when the path does not fit the tree."""
    if not 0 <= leaf_index < tree_size:
        return None
    digest = _leaf(tx_hash_hex)
    index, size, steps = leaf_index, tree_size, list(path)
    while size > 1:
        if index % 2:
            if not steps:
                return None
            digest = _node(bytes.fromhex(steps.pop(0)), digest)
        elif index + 1 < size:
            if not steps:
                return None
            digest = _node(digest, bytes.fromhex(steps.pop(0)))
        index, size = index // 2, (size + 1) // 2
    return None if steps else digest.hex()


# --- Blocks: the tree's upper levels are stored so that a proof never reads a whole block ---
#
# Level CHUNK_LEVEL holds the roots of consecutive runs of CHUNK_SIZE leaves. A block stores
# every node from that level up to (not including) the root, packed as 32-byte hashes level
# after level ("merkle_nodes"). A proof then reads the leaf's own run of at most 64
# transaction hashes plus a few stored nodes; ledger_verify recomputes and compares them.

CHUNK_LEVEL = 6
CHUNK_SIZE = 1 << CHUNK_LEVEL


def level_sizes(tree_size: int) -> list[int]:
    sizes = [tree_size]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def chunk_root(tx_hashes: Sequence[str]) -> bytes:
    """The level-CHUNK_LEVEL node over one run of at most CHUNK_SIZE transaction hashes."""
    return _levels([_leaf(h) for h in tx_hashes])[-1][0]


def block_tree(chunk_roots: list[bytes]) -> tuple[str, bytes]:
    """(Merkle root, packed upper nodes) from a block's chunk roots in order."""
    if not chunk_roots:
        return sha256_hex(b""), b""
    levels = _levels(chunk_roots)
    return levels[-1][0].hex(), b"".join(node for level in levels[:-1] for node in level)


def block_tree_from_hashes(tx_hashes: Sequence[str]) -> tuple[str, bytes]:
    """(Merkle root, packed upper nodes) of a block's transaction hashes in order."""
    roots = [chunk_root(tx_hashes[i : i + CHUNK_SIZE]) for i in range(0, len(tx_hashes), CHUNK_SIZE)]
    return block_tree(roots)


def block_path(*, leaf_index: int, tree_size: int, chunk_hashes: Sequence[str], merkle_nodes: bytes) -> list[str]:
    """A leaf's proof from its run of transaction hashes (``chunk_hashes``) and the block's stored nodes."""
    path = _path(_levels([_leaf(h) for h in chunk_hashes]), leaf_index % CHUNK_SIZE)
    sizes = level_sizes(tree_size)
    offset = 0
    index = leaf_index >> CHUNK_LEVEL
    for level in range(CHUNK_LEVEL, len(sizes) - 1):
        size = sizes[level]
        sibling = index - 1 if index % 2 else index + 1
        if sibling < size:
            start = 32 * (offset + sibling)
            path.append(merkle_nodes[start : start + 32].hex())
        offset += size
        index //= 2
    return path
