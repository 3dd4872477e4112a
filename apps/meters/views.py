"""Meter pages: a meter's recent readings and interval energy; the operators' meter health page."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.common import clock
from apps.members.selectors import member_for_user
from apps.meters.selectors import (
    meter_daily_energy,
    meter_for_viewer,
    meter_recent_intervals,
    meter_recent_readings,
    meters_needing_attention,
    rejections_recent,
)

RECENT = 96  # one day of 15-minute data


@login_required
def meter_detail(request: HttpRequest, serial: str) -> HttpResponse:
    member = member_for_user(user=request.user)  # type: ignore[arg-type]
    meter = meter_for_viewer(serial=serial, member=member, is_operator=request.user.is_staff)
    if meter is None:
        raise Http404("No such meter.")
    intervals = meter_recent_intervals(meter=meter, limit=RECENT)
    return render(
        request,
        "meters/meter_detail.html",
        {
            "meter": meter,
            "readings": meter_recent_readings(meter=meter, limit=RECENT),
            "intervals": intervals,
            "estimated_count": sum(1 for i in intervals if i.estimated),
            "daily": meter_daily_energy(meter=meter, days=14),
        },
    )


@login_required
def operator_meters(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("Operators only.")
    now = clock.now()
    since = now - dt.timedelta(days=7)
    return render(
        request,
        "meters/operator_meters.html",
        {
            "since": since,
            "health": meters_needing_attention(since=since, stale_after=now - dt.timedelta(hours=1)),
            "rejections": rejections_recent(since=since, limit=100),
        },
    )
