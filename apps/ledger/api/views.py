"""The member's own ledger proofs: the JSON that scripts/verify_ledger_proofs.py checks offline."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api.params import instant_param
from apps.common.api.permissions import IsMember
from apps.ledger.selectors import member_ledger_export


class MyLedgerProofsView(APIView):
    """The caller's transactions with Merkle proofs and the block headers (docs/ledger-verify.md)."""

    permission_classes = [IsMember]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since", str, description="ISO 8601 UTC: only transactions recorded since (opening_balance before)"
            )
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        export = member_ledger_export(member=request.user.member, since=instant_param(request, "since"))
        response = Response(export)
        response["Content-Disposition"] = f'inline; filename="ledger-proofs-{export["member_number"]}.json"'
        return response
