"""The shared parsing of ``Authorization: Bearer <key>``; each kind of key has its own class."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request


class BearerAuthentication(BaseAuthentication):
    """Subclasses set ``key_prefix`` and resolve keys that carry it; others pass through."""

    key_prefix = ""

    def bearer_key(self, request: Request) -> str | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        if not key.startswith(f"{self.key_prefix}_"):
            if not any(key.startswith(f"{p}_") for p in KNOWN_PREFIXES):
                raise AuthenticationFailed("Invalid token.")
            return None
        return key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


# Every kind of bearer key the API knows (personal tokens, device keys).
KNOWN_PREFIXES = ("ecp", "ecm")
