"""Signals members sends for the apps above it.

Members sits near the ground of the stack: it never calls upward. What must happen above it
when a membership or a credential ends (the live sockets close, in ``realtime``) listens to
these signals instead. Both are sent inside the transaction that made the change; receivers
that act on the outside world defer their effect to commit. (Members' own receivers, of
allauth's signals, are in ``receivers``.)
"""

from __future__ import annotations

from django.dispatch import Signal

# The membership stopped being active (suspended, left, ...): ``member_id``.
membership_deactivated = Signal()
# A personal API token was revoked: ``token_id``.
api_token_revoked = Signal()
