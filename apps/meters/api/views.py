"""The readings endpoints (CONTRACT.md, Readings): thin adapters over ``readings_ingest``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.api.permissions import DevicePrincipal, IsOperator
from apps.common.exceptions import NotFound
from apps.meters.api.parsers import FastJSONParser
from apps.meters.api.permissions import MeterDeviceOrOperator
from apps.meters.api.serializers import BulkReadingsInputSerializer, IngestOutputSerializer, ReadingsInputSerializer
from apps.meters.models import Meter
from apps.meters.services import readings_envelope_check, readings_ingest


class MeterReadingsView(APIView):
    """Post cumulative register readings of one meter (its device key, or an operator token)."""

    permission_classes = [MeterDeviceOrOperator]
    parser_classes = [FastJSONParser]

    @extend_schema(request=ReadingsInputSerializer, responses=IngestOutputSerializer)
    def post(self, request: Request, serial: str) -> Response:
        if isinstance(request.auth, DevicePrincipal):
            meter = request.auth.meter
        else:
            meter = Meter.objects.filter(serial=serial).first()
            if meter is None:
                raise NotFound(f"No meter with serial {serial!r}.")
        readings = readings_envelope_check(request.data)
        return Response(readings_ingest(readings=readings, meter=meter).as_dict())


class BulkReadingsView(APIView):
    """Post readings of many meters at once, each item naming its ``serial`` (operator token)."""

    permission_classes = [IsOperator]
    parser_classes = [FastJSONParser]

    @extend_schema(request=BulkReadingsInputSerializer, responses=IngestOutputSerializer)
    def post(self, request: Request) -> Response:
        readings = readings_envelope_check(request.data)
        return Response(readings_ingest(readings=readings).as_dict())
