"""The ledger's own refusals; each is a DomainError the API and pages already translate."""

from __future__ import annotations

from apps.common.exceptions import Conflict


class LedgerAppendOnly(Conflict):
    """Something tried to change or remove a ledger row. Corrections are reversals."""

    default_code = "ledger_append_only"
