from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.common.api.permissions import DevicePrincipal, IsOperator


class MeterDeviceOrOperator(BasePermission):
    """The meter's own device key (the serial in the path), or an operator's token."""

    message = "This endpoint is for the meter's own device key or an operator."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, DevicePrincipal):
            if request.auth.meter.serial != view.kwargs.get("serial"):
                raise PermissionDenied("A device key may only post its own meter's readings.")
            return True
        return IsOperator().has_permission(request, view)
