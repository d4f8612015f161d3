"""Webhook signatures: HMAC-SHA256 over `timestamp + "." + body`, sent in two headers.

    X-HM-Timestamp: 1767225600
    X-HM-Signature: v1=<hex HMAC-SHA256(secret, b"1767225600." + body)>

The timestamp is signed with the body, so a receiver that checks both the signature and
that the timestamp is recent (`tolerance_s`) rejects a captured request replayed later.
docs/webhooks.md shows a receiver; `verify` is the same check, used by our own tests.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-HM-Timestamp"
SIGNATURE_HEADER = "X-HM-Signature"
VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook request failed verification; the message says which check failed."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp.body` under `secret`."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two signature headers for `body`, stamped with the current time."""
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{VERSION}={signature(secret, timestamp, body)}",
    }


def verify(
    secret: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless the headers sign `body` with `secret` recently enough.

    The signature header may carry several comma-separated `v1=` values (e.g. while a
    secret is rotated); one match is enough.
    """
    if not timestamp_header or not signature_header:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        timestamp = int(timestamp_header)
    except ValueError as exc:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {current - timestamp:.0f}s away from now "
            f"(tolerance {tolerance_s:.0f}s): stale or replayed request"
        )
    expected = signature(secret, timestamp, body)
    candidates = [
        value.strip()[len(VERSION) + 1 :]
        for value in signature_header.split(",")
        if value.strip().startswith(f"{VERSION}=")
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body and timestamp")
