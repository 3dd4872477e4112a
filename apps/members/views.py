"""Member pages: personal access tokens (the home page, which composes many apps, is the portal's)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.common.exceptions import DomainError
from apps.members.forms import ApiTokenCreateForm
from apps.members.selectors import api_tokens_for_user
from apps.members.services import api_token_create, api_token_revoke


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, new_key = api_token_create(user=request.user, name=form.cleaned_data["name"])  # type: ignore[arg-type]
            form = ApiTokenCreateForm()
        except DomainError as exc:
            form.add_error("name", exc.message)
    return render(
        request,
        "members/tokens.html",
        {"form": form, "new_key": new_key, "tokens": api_tokens_for_user(user=request.user)},  # type: ignore[arg-type]
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = api_token_revoke(user=request.user, token_id=token_id)  # type: ignore[arg-type]
        messages.success(request, f"Token “{token.name}” revoked.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("tokens")
