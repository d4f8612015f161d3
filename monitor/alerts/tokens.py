"""Bearer tokens of websocket subscribers: settings hold only their sha256.

`harvest-monitor alerts token --name NAME` prints a fresh token (for the subscriber) and the
`[[subscriptions.tokens]]` entry with its hash (for the settings). A stolen settings file
does not give access: the token cannot be recovered from its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

TOKEN_PREFIX = "hmt_"


def new_token() -> str:
    """A random token with 256 bits of entropy."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The hex sha256 stored in settings for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """Known token hashes and their holders' names."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._entries = [(name, sha.lower()) for name, sha in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def holder(self, token: str) -> str | None:
        """The name whose hash matches `token`, or None (every entry compared in constant time)."""
        digest = token_hash(token)
        found: str | None = None
        for name, sha in self._entries:
            if hmac.compare_digest(digest, sha):
                found = name
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
