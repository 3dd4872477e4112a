"""Meter pages: a meter's recent readings and interval energy; the operators' meter health page."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.common import clock
from apps.members.selectors import member_for_user
from apps.meters.choices import MeterRole, RollupGrain
from apps.meters.models import MeterRollup
from apps.meters.selectors import (
    member_energy_dashboard,
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
def member_energy(request: HttpRequest) -> HttpResponse:
    """The member's energy per day over the last 30 days (or per hour over the last 2), from rollups."""
    member = member_for_user(user=request.user)  # type: ignore[arg-type]
    if member is None:
        raise Http404("No membership.")
    hourly = request.GET.get("grain") == "hour"
    end = clock.now()
    start = end - (dt.timedelta(days=2) if hourly else dt.timedelta(days=30))
    dashboard = member_energy_dashboard(
        member=member, start=start, end=end, grain=RollupGrain.HOUR if hourly else RollupGrain.DAY
    )
    subs = [m for m in dashboard.meters if m.role == MeterRole.SUB]
    by_bucket: dict[tuple[int, dt.datetime], MeterRollup] = {
        (meter_id, row.bucket_start): row for meter_id, rows in dashboard.meter_buckets.items() for row in rows
    }
    lines = [
        {"total": total, "subs": [by_bucket.get((m.pk, total.bucket_start)) for m in subs]}
        for total in reversed(dashboard.member_buckets)
    ]
    return render(request, "meters/member_energy.html", {"lines": lines, "subs": subs, "hourly": hourly})


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
