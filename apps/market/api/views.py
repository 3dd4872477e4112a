"""The market API: thin adapters over market.services and market.selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common import clock
from apps.common.api.params import instant_param
from apps.common.api.permissions import IsMember, IsOperator
from apps.common.exceptions import NotFound, ValidationFailed
from apps.market import selectors, services
from apps.market.api.serializers import (
    DynamicPricesInputSerializer,
    DynamicPricesOutputSerializer,
    IntervalOutputSerializer,
    OrderInputSerializer,
    OrderOutputSerializer,
    ResultOutputSerializer,
    TariffOutputSerializer,
    TradeOutputSerializer,
)
from apps.market.choices import IntervalState
from apps.market.tariffs import tariff_for

INTERVAL_START = OpenApiParameter("interval_start", str, description="ISO 8601 UTC, e.g. 2026-11-23T08:00:00Z")


class IntervalListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=IntervalState.values)],
        responses=IntervalOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        state = request.query_params.get("state")
        if state is not None and state not in IntervalState.values:
            raise ValidationFailed("Unknown state.", fields={"state": [f"One of {IntervalState.values}."]})
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 1000)
        except ValueError:
            raise ValidationFailed("limit is a number.", fields={"limit": ["An integer."]}) from None
        rows = selectors.intervals_list(now=clock.now(), state=state, limit=limit)
        return Response(IntervalOutputSerializer(rows, many=True).data)


class OrderListCreateView(APIView):
    permission_classes = [IsMember]

    @extend_schema(parameters=[INTERVAL_START], responses=OrderOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        orders = selectors.orders_for_member(
            member=request.user.member, interval_start=instant_param(request, "interval_start")
        )
        return Response(OrderOutputSerializer(orders[:1000], many=True).data)

    @extend_schema(
        request=OrderInputSerializer,
        responses={201: OrderOutputSerializer, 200: OrderOutputSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, location=OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        now = clock.now()
        order_input = services.order_input_parse(
            interval_start=body.get("interval_start"),
            side=body.get("side"),
            quantity_wh=body.get("quantity_wh"),
            limit_price=body.get("limit_price"),
            now=now,
        )
        order, created = services.order_submit(
            member=request.user.member,
            order=order_input,
            now=now,
            idempotency_key=request.headers.get("Idempotency-Key") or None,
        )
        order = selectors.orders_for_member(member=request.user.member).get(pk=order.pk)
        return Response(
            OrderOutputSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class OrderDetailView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses=OrderOutputSerializer)
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.orders_for_member(member=request.user.member).filter(pk=order_id).first()
        if order is None:
            raise NotFound("No such order.")
        return Response(OrderOutputSerializer(order).data)

    @extend_schema(responses=OrderOutputSerializer)
    def delete(self, request: Request, order_id: int) -> Response:
        services.order_cancel(member=request.user.member, order_id=order_id, now=clock.now())
        order = selectors.orders_for_member(member=request.user.member).get(pk=order_id)
        return Response(OrderOutputSerializer(order).data)


class TradeListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(parameters=[INTERVAL_START], responses=TradeOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        trades = selectors.trades_for_member(
            member=request.user.member, interval_start=instant_param(request, "interval_start")
        )
        return Response(TradeOutputSerializer(trades[:5000], many=True).data)


class ResultView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses=ResultOutputSerializer)
    def get(self, request: Request, interval_start: str) -> Response:
        try:
            start = clock.parse_instant(interval_start)
        except ValueError:
            raise ValidationFailed(
                "interval_start is not an ISO 8601 UTC instant.", fields={"interval_start": ["Not a UTC instant."]}
            ) from None
        result = selectors.result_for(start=start, now=clock.now())
        if result is None:
            raise NotFound("This interval is not cleared yet.", code="not_cleared")
        return Response(ResultOutputSerializer(result).data)


class TariffView(APIView):
    """The tariffs of one interval (the band orders must lie in)."""

    permission_classes = [IsMember]

    @extend_schema(parameters=[INTERVAL_START], responses=TariffOutputSerializer)
    def get(self, request: Request) -> Response:
        start = instant_param(request, "interval_start")
        if start is None:
            raise ValidationFailed("interval_start is required.", fields={"interval_start": ["Required."]})
        tariff = tariff_for(start)
        return Response(
            {
                "interval_start": clock.format_instant(start),
                "retail_price": str(tariff.retail_price),
                "feed_in_price": str(tariff.feed_in_price),
                "imbalance_price": str(tariff.imbalance_price),
                "network_fee": str(tariff.network_fee),
                "coop_fee": str(tariff.coop_fee),
            }
        )


class DynamicPriceView(APIView):
    """Operators publish dynamic prices for intervals (e.g. the day-ahead retail price)."""

    permission_classes = [IsOperator]

    @extend_schema(request=DynamicPricesInputSerializer, responses=DynamicPricesOutputSerializer)
    def post(self, request: Request) -> Response:
        serializer = DynamicPricesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        count = services.dynamic_prices_set(prices=serializer.validated_data["prices"], now=clock.now())
        return Response({"stored": count})
