from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.common.api.authentication import BearerAuthentication
from apps.common.api.permissions import DevicePrincipal
from apps.meters.services import DEVICE_KEY_PREFIX, meter_authenticate


class DeviceKeyAuthentication(BearerAuthentication):
    """A meter's device key: no user, only the right to post that meter's readings."""

    key_prefix = DEVICE_KEY_PREFIX

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = self.bearer_key(request)
        if key is None:
            return None
        meter = meter_authenticate(key=key)
        if meter is None:
            raise AuthenticationFailed("Invalid device key.")
        return AnonymousUser(), DevicePrincipal(meter)
