"""The alert message, schema `hm.alert/1`: one JSON object per alert, everywhere.

The same bytes go to stdout, alert files, Kafka and webhooks. Field names and their
order do not change without a schema version bump. Money fields are decimal strings
rounded to cents; quantity is the exact decimal quantity.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal

import msgspec

SCHEMA = "hm.alert/1"
CENT = Decimal("0.01")


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A harvest opportunity for one (account, wallet, asset) on one tick."""

    schema: str = SCHEMA
    alert_id: str
    kind: str = "harvest"
    account: str
    wallet: str
    asset: str
    lot_ids: list[str]
    quantity: str
    price: str  # the consolidated USD price the lots crossed at
    cost_basis_usd: str
    proceeds_usd: str
    loss_usd: str
    short_term_loss_usd: str
    long_term_loss_usd: str
    tax_savings_usd: str
    cost_usd: str
    net_benefit_usd: str
    venue: str
    symbol: str
    tick_ts: str
    emitted_at: str
    venues: int = 1  # venues whose prices agreed on `price` (1: a single fresh venue)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Alert)


def encode_alert(alert: Alert) -> bytes:
    """The alert as one line of JSON (no trailing newline)."""
    return _encoder.encode(alert)


def decode_alert(data: bytes | str) -> Alert:
    """Parse an `hm.alert/1` JSON object."""
    return _decoder.decode(data)


def cents(amount: Decimal) -> str:
    """Round money to cents (half up, the accounting convention) for output only."""
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def plain(amount: Decimal) -> str:
    """An exact decimal without exponent or trailing zeros (for quantities and prices)."""
    text = format(amount.normalize(), "f")
    return text


def alert_id(*parts: str) -> str:
    """Deterministic id from the alert's content, so a replay gives the same ids."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return "hma_" + digest[:24]
