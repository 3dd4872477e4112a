from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.common.api.authentication import BearerAuthentication
from apps.members.services import API_TOKEN_PREFIX, api_token_authenticate


class PersonalTokenAuthentication(BearerAuthentication):
    """A member's (or operator's, or billing user's) personal access token."""

    key_prefix = API_TOKEN_PREFIX

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = self.bearer_key(request)
        if key is None:
            return None
        token = api_token_authenticate(key=key)
        if token is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        return token.user, token
