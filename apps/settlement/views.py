"""Member pages: balance, settlements per interval and per day, the rules, the offline check."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.common import clock
from apps.common.intervals import coop_zone
from apps.ledger.selectors import member_balance, member_ledger_export
from apps.settlement.selectors import rule_set_get, settlement_days_for_member, settlements_for_member

DAYS_SHOWN = 14
INTERVALS_SHOWN = 96


@login_required
def statement(request: HttpRequest) -> HttpResponse:
    member = getattr(request.user, "member", None)
    if member is None:
        raise Http404("No membership.")
    tz = coop_zone()
    since = clock.now() - dt.timedelta(days=DAYS_SHOWN)
    context = {
        "balance": member_balance(member=member),
        "intervals": list(settlements_for_member(member=member)[:INTERVALS_SHOWN]),
        "days": settlement_days_for_member(member=member, start_from=since, tz=tz),
    }
    return render(request, "settlement/statement.html", context)


@login_required
def rules(request: HttpRequest, version: int) -> HttpResponse:
    rule_set = rule_set_get(version=version)
    if rule_set is None:
        raise Http404("No such rule version.")
    return render(request, "settlement/rules.html", {"rule_set": rule_set})


@login_required
def proofs_download(request: HttpRequest) -> HttpResponse:
    """The member's transactions with Merkle proofs and block headers, for the offline check."""
    member = getattr(request.user, "member", None)
    if member is None:
        raise Http404("No membership.")
    response = HttpResponse(
        json.dumps(member_ledger_export(member=member), indent=1, default=str), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="ledger-proofs-{member.number}.json"'
    return response
