"""The Merkle tree is RFC 6962's, proofs from stored upper levels equal proofs from all leaves."""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.ledger import hashing


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the RFC does (split at the largest power of two below n)."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962_root(leaves[:k]) + _rfc6962_root(leaves[k:])).digest()


def _hashes(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [rng.randbytes(32).hex() for _ in range(n)]


@pytest.mark.parametrize("n", [*range(1, 70), 127, 128, 129, 200, 4097])
def test_root_is_the_rfc6962_tree_hash(n):
    hashes = _hashes(n, seed=n)
    expected = _rfc6962_root([bytes.fromhex(h) for h in hashes]).hex()
    assert hashing.merkle_root(hashes) == expected
    assert hashing.block_tree_from_hashes(hashes)[0] == expected


@pytest.mark.parametrize("n", [1, 2, 3, 7, 63, 64, 65, 100, 128, 129, 1000, 4097])
def test_block_paths_from_stored_nodes_equal_full_paths_and_verify(n):
    hashes = _hashes(n, seed=n)
    root, nodes = hashing.block_tree_from_hashes(hashes)
    assert len(nodes) % 32 == 0
    indices = sorted({0, n - 1, n // 2, *random.Random(n).sample(range(n), min(n, 25))})
    for i in indices:
        run = i // hashing.CHUNK_SIZE * hashing.CHUNK_SIZE
        path = hashing.block_path(
            leaf_index=i, tree_size=n, chunk_hashes=hashes[run : run + hashing.CHUNK_SIZE], merkle_nodes=nodes
        )
        assert path == hashing.merkle_path(hashes, i)
        assert hashing.merkle_path_root(tx_hash_hex=hashes[i], leaf_index=i, tree_size=n, path=path) == root
        # The proof does not carry another transaction to the root, nor a path with an extra step.
        if n > 1:
            other = hashes[(i + 1) % n]
            assert hashing.merkle_path_root(tx_hash_hex=other, leaf_index=i, tree_size=n, path=path) != root
        assert hashing.merkle_path_root(tx_hash_hex=hashes[i], leaf_index=i, tree_size=n, path=[*path, root]) is None


def test_leaf_and_node_hashes_are_domain_separated():
    # A two-leaf tree's root is not a leaf hash of the concatenation (second-preimage guard).
    a, b = _hashes(2)
    root = hashing.merkle_root([a, b])
    assert root != hashlib.sha256(bytes.fromhex(a) + bytes.fromhex(b)).hexdigest()


def test_canonical_forms():
    assert hashing.amount_canonical(Decimal("-12.34")) == "-12.3400"
    assert hashing.amount_canonical(Decimal("100000")) == "100000.0000"
    assert hashing.canonical_json({"b": 1, "a": "é"}) == b'{"a":"\\u00e9","b":1}'


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    key=_text,
    kind=_text,
    description=_text,
    reverses=st.none() | _text,
    postings=st.lists(st.tuples(_text, _text, _text), max_size=5),
)
def test_the_fast_digest_writes_the_reference_bytes(key, kind, description, reverses, postings):
    fields = {
        "idempotency_key": key,
        "kind": kind,
        "description": description,
        "occurred_at": "2026-11-20T09:00:00.000000Z",
        "created_at": "2026-11-20T09:00:01.123456Z",
        "reverses_hash": reverses,
        "postings": postings,
    }
    assert hashing.transaction_digest(**fields) == hashing.transaction_hash(hashing.transaction_content(**fields))
