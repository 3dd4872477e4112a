"""Market pages: thin adapters over the market's services and selectors."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.common import clock
from apps.common.exceptions import DomainError
from apps.common.intervals import coop_zone, local_day_bounds, local_midnight
from apps.market import selectors, services, timing
from apps.market.forms import OrderForm, TradeFilterForm

CHART_WIDTH, CHART_HEIGHT = 600, 160
ORDER_INTERVALS = 16


def _member_or_none(request: HttpRequest):  # type: ignore[no-untyped-def]
    return getattr(request.user, "member", None)


def price_chart(points: list[tuple[dt.datetime, Decimal]]) -> dict[str, object]:
    """An SVG polyline of the last cleared prices (rendered on the server: no JS needed)."""
    if not points:
        return {"points": "", "min": None, "max": None, "prices": ""}
    prices = [p for _, p in points]
    low, high = min(prices), max(prices)
    span = (high - low) or Decimal(1)
    # Drawing coordinates only; Decimal keeps the one number type of prices throughout.
    step = Decimal(CHART_WIDTH) / max(len(points) - 1, 1)
    coords = [
        f"{i * step:.1f},{CHART_HEIGHT - 10 - (p - low) / span * (CHART_HEIGHT - 20):.1f}"
        for i, (_, p) in enumerate(points)
    ]
    return {"points": " ".join(coords), "min": low, "max": high, "prices": " ".join(str(p) for p in prices)}


def _for_tile(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The price tile's fields, from the last clearing in the database (the live stream's
    memory may be empty, e.g. right after the demo was seeded)."""
    return {
        "interval_start": result.interval.start,
        "price": result.price,
        "volume_wh": result.volume_wh,
        "trades": result.trades_count,
    }


@login_required
def market(request: HttpRequest) -> HttpResponse:
    member = _member_or_none(request)
    now = clock.now()
    starts = timing.open_interval_starts(now, limit=ORDER_INTERVALS)
    tz = coop_zone()
    choices = [(clock.format_instant(s), f"{s.astimezone(tz):%a %H:%M}") for s in starts]
    form = OrderForm(request.POST or None, interval_choices=choices)
    if request.method == "POST" and member is not None and form.is_valid():
        data = form.cleaned_data
        try:
            order_input = services.order_input_parse(
                interval_start=data["interval_start"],
                side=data["side"],
                quantity_wh=data["quantity_wh"],
                limit_price=str(data["limit_price"]),
                now=now,
            )
            order, _ = services.order_submit(member=member, order=order_input, now=now)
            messages.success(request, f"Order #{order.pk} placed: {order.side} {order.quantity_wh} Wh.")
            return redirect("market")
        except DomainError as exc:
            for field, errors in exc.fields.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not exc.fields:
                form.add_error(None, exc.message)
    results = selectors.recent_prices(limit=96)
    next_interval = services.interval_get_or_create(start=starts[0]) if starts else None
    bids, offers = selectors.order_book_depth(interval=next_interval) if next_interval else ([], [])
    context = {
        "member": member,
        "form": form,
        "open_intervals": [timing.interval_times(s) for s in starts[:8]],
        "orders": selectors.orders_for_member(member=member)[:20] if member else [],
        "last": results[-1] if results else None,
        "last_cleared": _for_tile(results[-1]) if results else None,
        "chart": price_chart([(r.interval.start, r.price) for r in results if r.price is not None]),
        "chart_size": (CHART_WIDTH, CHART_HEIGHT),
        "recent_results": results[-8:][::-1],
        "depth_interval": next_interval,
        "bids": bids,
        "offers": offers,
        "now": now,
    }
    return render(request, "market/market.html", context)


@login_required
@require_POST
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    member = _member_or_none(request)
    if member is None:
        return redirect("market")
    try:
        services.order_cancel(member=member, order_id=order_id, now=clock.now())
        messages.success(request, f"Order #{order_id} cancelled.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("market")


@login_required
def trades(request: HttpRequest) -> HttpResponse:
    member = _member_or_none(request)
    form = TradeFilterForm(request.GET or None)
    rows = []
    if member is not None and (not request.GET or form.is_valid()):
        data = form.cleaned_data if form.is_bound else {}
        day_from, day_to = data.get("date_from"), data.get("date_to")
        # Local days: from the start of date_from to the end of date_to, either end open.
        start_from = local_midnight(day_from) if day_from else None
        start_to = local_day_bounds(day_to)[1] if day_to else None
        rows = selectors.trades_for_member(
            member=member, start_from=start_from, start_to=start_to, side=data.get("side") or None
        )
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="trades.csv"'
        writer = csv.writer(response)
        writer.writerow(["interval_start", "side", "quantity_wh", "price", "amount", "order_id"])
        for t in rows:
            writer.writerow(
                [clock.format_instant(t.interval_start), t.side, t.quantity_wh, t.price, t.amount, t.order_id]
            )
        return response
    query = request.GET.copy()
    query["format"] = "csv"
    return render(request, "market/trades.html", {"form": form, "trades": rows, "csv_query": query.urlencode()})
