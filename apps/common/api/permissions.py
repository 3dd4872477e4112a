"""Who may call what. A meter's device key is refused everywhere but its readings (403)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class DevicePrincipal:
    """What ``request.auth`` holds when a meter's device key authenticated the request."""

    def __init__(self, meter: Any):
        self.meter = meter


def _is_device(request: Request) -> bool:
    return isinstance(request.auth, DevicePrincipal)


def _role(request: Request) -> str | None:
    member = getattr(request.user, "member", None)
    return getattr(member, "role", None)


class _PeopleOnly(BasePermission):
    """Base: a signed-in person (token or session); a device key is 403, nothing is 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if _is_device(request):
            raise PermissionDenied("A meter's device key may only post that meter's readings.")
        if not (request.user and request.user.is_authenticated):
            raise NotAuthenticated()
        return self.allowed(request)

    def allowed(self, request: Request) -> bool:
        return True


class IsMember(_PeopleOnly):
    """Any account with a membership record (applicants read their own status)."""

    message = "This endpoint is for coop members."

    def allowed(self, request: Request) -> bool:
        return getattr(request.user, "member", None) is not None


class IsOperator(_PeopleOnly):
    message = "This endpoint is for operators."

    def allowed(self, request: Request) -> bool:
        return bool(request.user.is_superuser) or _role(request) in {"operator", "admin"}


class IsBilling(_PeopleOnly):
    message = "This endpoint is for the utility's billing role."

    def allowed(self, request: Request) -> bool:
        return bool(request.user.is_superuser) or _role(request) in {"billing", "operator", "admin"}
