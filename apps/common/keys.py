"""Secrets handed out once (personal access tokens, device keys) and stored only as hashes.

The keys carry 256 bits of randomness, so a fast SHA-256 is the right hash here (a slow
password hash protects low-entropy secrets; it would only slow every API request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def key_new(prefix: str) -> str:
    """A new secret such as ``ecp_3f9a…``; the prefix tells people what kind of key it is."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored_hash)
