"""Every lock the ledger takes, built on :mod:`apps.common.locks`.

Only sealing locks anything: one transaction-scoped advisory lock, so that two sealers
take turns and the chain never forks. Posting takes no lock at all, on purpose: an
idempotency key is booked once and a transaction reversed once by unique constraints
(a racing writer gets an IntegrityError and reads the winner's row), account creation is
get-or-create on a unique code, and balances are sums of postings, so no account row is a
lock that would serialise settlement. Writers never wait for a sealer, nor it for them.
"""

from __future__ import annotations

import hashlib

from apps.common.locks import advisory_xact

# The key of the sealers' advisory lock: fixed by its name, so every process (and every
# version of the code during a deploy) takes the same one.
SEAL_LOCK_ID = int.from_bytes(hashlib.sha256(b"energycoop.ledger.seal").digest()[:8], "big", signed=True)


def seal_lock() -> None:
    """Hold the sealers' lock until the transaction ends (waiting for a sealer that holds it).

    PostgreSQL; SQLite's single writer serialises sealers anyway.
    """
    advisory_xact(SEAL_LOCK_ID)
