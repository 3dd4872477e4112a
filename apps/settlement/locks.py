"""Row locks of settlement (built on ``apps.common.locks``): the settled interval is taken last,
after anything of the member's or the market's (``docs/architecture.md``)."""

from __future__ import annotations

import datetime as dt

from apps.common.locks import one_for_update
from apps.settlement.models import SettledInterval


def settled_interval_lock(*, start: dt.datetime) -> SettledInterval | None:
    """The settled interval starting at ``start``, FOR UPDATE OF its own table; None if unsettled."""
    return one_for_update(SettledInterval.objects.all(), interval_start=start)
