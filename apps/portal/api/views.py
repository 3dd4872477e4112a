from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api.permissions import IsMember
from apps.meters.selectors import meters_for_member
from apps.portal.api.serializers import MeOutputSerializer


class MeView(APIView):
    """The caller's membership and meters."""

    permission_classes = [IsMember]

    @extend_schema(responses=MeOutputSerializer)
    def get(self, request: Request) -> Response:
        member = request.user.member
        data = {
            "member_number": member.number,
            "status": member.status,
            "role": member.role,
            "email": request.user.email,
            "meters": [{"serial": m.serial, "role": m.role} for m in meters_for_member(member=member)],
        }
        return Response(MeOutputSerializer(data).data)
