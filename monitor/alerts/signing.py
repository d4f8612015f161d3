"""Webhook signatures, the Standard Webhooks way (https://www.standardwebhooks.com, spec 1.0.0).

    webhook-id:        hma_3f2a...                 (the alert id: the receiver's idempotency key)
    webhook-timestamp: 1767225600                  (Unix seconds of this attempt)
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.".encode() + body)>

The key is the secret as the spec serializes it, `whsec_<base64 of the key bytes>`; a secret
without that prefix is used as the key bytes themselves (the secrets of earlier releases),
and a receiver's library then takes `whsec_` + base64(secret). The signature header is a
space-separated list (several while a secret is rotated); one match is enough. The id and
the timestamp are signed with the body, so a captured request replayed later fails the
receiver's time check, and one with a forged timestamp fails the signature.

The headers of earlier releases (`X-HM-Timestamp`, `X-HM-Signature: v1=<hex HMAC-SHA256 of
"{timestamp}.{body}">`) are sent too when a subscription sets `legacy_headers = true`, for
one release, so receivers can move over. `verify` and `verify_legacy` are the receiver's
checks, used by our own tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
LEGACY_TIMESTAMP_HEADER = "X-HM-Timestamp"
LEGACY_SIGNATURE_HEADER = "X-HM-Signature"
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # the spec: "Random. At least 24 bytes"
MAX_KEY_BYTES = 64  # ... "512 maximum" (bits)
VERSION = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A webhook request failed verification; the message says which check failed."""


def signing_key(secret: bytes) -> bytes:
    """The HMAC key of a secret: `whsec_<base64>` decoded, any other secret as it is.

    Raises ValueError for a `whsec_` secret that is not base64 of 24 to 64 bytes.
    """
    if not secret.startswith(SECRET_PREFIX.encode()):
        return secret
    text = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a whsec_ secret must be whsec_ followed by base64") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"a whsec_ secret must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes "
            f"(this one holds {len(key)})"
        )
    return key


def new_secret(nbytes: int = 32) -> str:
    """A fresh `whsec_` secret (what `harvest-monitor alerts webhook-secret` prints)."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}` under `key`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def legacy_signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `{timestamp}.{body}` (the `X-HM-Signature` of earlier releases)."""
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_headers(
    key: bytes, msg_id: str, body: bytes, *, legacy: bool = False, now: float | None = None
) -> dict[str, str]:
    """The signature headers for `body`, stamped with the current time (and the legacy pair)."""
    if "." in msg_id:  # the spec: the id must not contain the separator
        raise ValueError(f"a webhook id must not contain '.': {msg_id!r}")
    timestamp = int(time.time() if now is None else now)
    headers = {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{VERSION},{signature(key, msg_id, timestamp, body)}",
    }
    if legacy:
        headers[LEGACY_TIMESTAMP_HEADER] = str(timestamp)
        headers[LEGACY_SIGNATURE_HEADER] = f"{VERSION}={legacy_signature(key, timestamp, body)}"
    return headers


def _timestamp(header: str, tolerance_s: float, now: float | None) -> int:
    try:
        timestamp = int(header)
    except ValueError as exc:
        raise SignatureError("the timestamp header is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"the timestamp is {current - timestamp:.0f}s away from now "
            f"(tolerance {tolerance_s:.0f}s): stale or replayed request"
        )
    return timestamp


def verify(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> str:
    """Check the Standard Webhooks headers; return the webhook id, or raise SignatureError.

    `headers` is matched case-insensitively (HTTP header names are).
    """
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get(ID_HEADER, "")
    stamp = lower.get(TIMESTAMP_HEADER, "")
    given = lower.get(SIGNATURE_HEADER, "")
    if not (msg_id and stamp and given):
        raise SignatureError(f"missing {ID_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    timestamp = _timestamp(stamp, tolerance_s, now)
    expected = signature(key, msg_id, timestamp, body)
    candidates = [
        value.split(",", 1)[1]
        for value in given.split(" ")
        if value.startswith(f"{VERSION},") and "," in value
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the id, timestamp and body")
    return msg_id


def verify_legacy(
    key: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """The check of the legacy `X-HM-*` pair (comma-separated `v1=` values; one match is enough)."""
    if not timestamp_header or not signature_header:
        raise SignatureError(
            f"missing {LEGACY_TIMESTAMP_HEADER} or {LEGACY_SIGNATURE_HEADER} header"
        )
    timestamp = _timestamp(timestamp_header, tolerance_s, now)
    expected = legacy_signature(key, timestamp, body)
    candidates = [
        value.strip()[len(VERSION) + 1 :]
        for value in signature_header.split(",")
        if value.strip().startswith(f"{VERSION}=")
    ]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("signature does not match the body and timestamp")
