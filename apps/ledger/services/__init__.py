"""Writes to the ledger: accounts, balanced transactions, reversals, sealing, verification.

One module per topic (``accounts``, ``posting``, ``sealing``, ``verification``); this
package re-exports their public operations, so callers import from ``apps.ledger.services``.
Every booking goes through ``transactions_post_many`` (``transaction_post`` is the
one-entry case), which validates everything before it writes, is idempotent by key and
writes one INSERT per table whatever the batch size. Nothing here updates or deletes a
row; the models and, on PostgreSQL, the database refuse it (migration 0002). The tables
are read and written in sets through :mod:`apps.ledger.store`, and every lock is taken
through :mod:`apps.ledger.locks`.
"""

from apps.ledger.services.accounts import account_for_member, accounts_for_members, coop_account
from apps.ledger.services.posting import (
    KEY_RE,
    KIND_RE,
    MAX_AMOUNT,
    MAX_DESCRIPTION,
    MAX_MEMO,
    PostingInput,
    PostingSpec,
    TransactionSpec,
    transaction_post,
    transaction_reverse,
    transactions_post_many,
)
from apps.ledger.services.sealing import BLOCK_MAX_TRANSACTIONS, ledger_seal, ledger_seal_all
from apps.ledger.services.verification import (
    VerificationResult,
    ledger_alert_operators,
    ledger_last_verified,
    ledger_verification_record,
    ledger_verification_run,
    ledger_verify,
)

__all__ = [
    "BLOCK_MAX_TRANSACTIONS",
    "KEY_RE",
    "KIND_RE",
    "MAX_AMOUNT",
    "MAX_DESCRIPTION",
    "MAX_MEMO",
    "PostingInput",
    "PostingSpec",
    "TransactionSpec",
    "VerificationResult",
    "account_for_member",
    "accounts_for_members",
    "coop_account",
    "ledger_alert_operators",
    "ledger_last_verified",
    "ledger_seal",
    "ledger_seal_all",
    "ledger_verification_record",
    "ledger_verification_run",
    "ledger_verify",
    "transaction_post",
    "transaction_reverse",
    "transactions_post_many",
]
