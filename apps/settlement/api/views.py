from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common import clock
from apps.common.api.permissions import IsMember
from apps.common.exceptions import ValidationFailed
from apps.ledger.selectors import member_balance
from apps.settlement.api.serializers import BalanceOutputSerializer, SettlementOutputSerializer
from apps.settlement.selectors import settlements_for_member


class BalanceView(APIView):
    """Positive when the coop owes the member, negative when the member owes the coop."""

    permission_classes = [IsMember]

    @extend_schema(responses=BalanceOutputSerializer)
    def get(self, request: Request) -> Response:
        balance = member_balance(member=request.user.member)
        return Response(BalanceOutputSerializer({"balance": balance, "currency": settings.CURRENCY}).data)


class SettlementListView(APIView):
    """The member's settlements per interval (the standing revision); newest first."""

    permission_classes = [IsMember]

    @extend_schema(
        parameters=[OpenApiParameter("interval_start", str, description="ISO 8601 UTC")],
        responses=SettlementOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        start = None
        if "interval_start" in request.query_params:
            try:
                start = clock.parse_instant(request.query_params["interval_start"])
            except ValueError:
                raise ValidationFailed(
                    "interval_start is not an ISO 8601 UTC instant.", fields={"interval_start": ["Not a UTC instant."]}
                ) from None
        rows = settlements_for_member(member=request.user.member, interval_start=start)[:500]
        return Response(SettlementOutputSerializer(rows, many=True).data)
