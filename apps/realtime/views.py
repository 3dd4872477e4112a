"""The public community price ticker: last cleared prices and volumes, live, for anyone."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from apps.realtime.selectors import cleared_recent
from apps.realtime.templatetags.realtime import cleared_for_display

TICKER_ROWS = 24


def ticker(request: HttpRequest) -> HttpResponse:
    """``/ticker/``: only when the coop enables ``REALTIME_PUBLIC_TICKER``; a 404 otherwise, so
    a disabled ticker is indistinguishable from none."""
    if not settings.REALTIME_PUBLIC_TICKER:
        raise Http404("No public ticker.")
    rows = [cleared_for_display(message) for message in cleared_recent(limit=TICKER_ROWS)]
    return render(
        request,
        "realtime/ticker.html",
        {"rows": rows, "last_cleared": rows[0] if rows else None, "keep": TICKER_ROWS},
    )
