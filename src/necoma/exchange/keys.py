"""API keys: random tokens shown once, stored only as SHA-256.

A token is `necoma_<key_id>_<secret>`: the key id (public, 12 hex digits)
finds the row without scanning, and the SHA-256 of the whole token is compared
in constant time, so neither a timing difference nor a stolen database reveals
a usable key. 32 random bytes make guessing hopeless, so a slow KDF adds nothing.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "necoma_"


def new_token() -> tuple[str, str]:
    """A fresh (key_id, token)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id inside a well-formed token, else None."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id


def matches(token: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(digest(token), stored_sha256)
