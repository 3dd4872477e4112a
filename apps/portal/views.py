"""Pages that compose many apps: the member's home (membership, meters and assets)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.assets.selectors import assets_for_member
from apps.members.selectors import member_for_user
from apps.meters.selectors import meters_for_member


def home(request: HttpRequest) -> HttpResponse:
    member = member_for_user(user=request.user)  # type: ignore[arg-type]
    context: dict[str, object] = {"member": member}
    if member is not None:
        context["meters"] = list(meters_for_member(member=member))
        context["assets"] = list(assets_for_member(member=member))
    return render(request, "portal/home.html", context)
