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


class PlanLot(msgspec.Struct, frozen=True, kw_only=True):
    """One lot a plan sells (or part of it: `quantity` may be less than the lot holds)."""

    lot_id: str
    quantity: str
    acquired_on: str  # YYYY-MM-DD
    term: str  # short | long (packs without a holding period: short)
    cost_basis_usd: str  # the lot's own basis, or its share of the average-cost pool
    proceeds_usd: str
    loss_usd: str


class Rebuy(msgspec.Struct, frozen=True, kw_only=True):
    """The second leg: buy back the same asset, a replacement, or nothing."""

    mode: str  # same | replacement | none
    asset: str = ""
    not_before: str = ""  # first UTC date the buy may be placed (YYYY-MM-DD)
    notional_usd: str = "0.00"


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What to do about an alert, by the rule pack (docs/tax.md)."""

    jurisdiction: str
    value_model: str  # flat | ytd
    lot_selection: str  # max_loss | hifo | fifo | pool (average cost) | fifo_consumption
    lots: list[PlanLot]
    sell_quantity: str
    legs: int  # 2 with a rebuy, else 1 (costs cover these legs)
    rebuy: Rebuy
    disallowed_loss_usd: str = "0.00"  # wash sale / superficial loss / same-day matching
    disallowed_reason: str = ""
    allowed_from: str = ""  # first sale day the disallowed part would be allowed
    permanent_usd: str = "0.00"  # of tax_savings_usd: kept for good (rate difference, expiry)
    deferral_usd: str = "0.00"  # of tax_savings_usd: paid back later (the rebuy's lower basis)
    deadline: str = ""  # kind deadline: the day the loss loses value
    do_not_buy_until: str = ""  # after this harvest, no same-asset buy in the account before
    warnings: list[str] = msgspec.field(default_factory=list)


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A harvest opportunity for one (account, wallet, asset) on one tick.

    `kind`: "harvest" (lots crossed their trigger), "deadline" (a loss is about to lose
    value: plan.deadline), "wash_warning" (a buy inside a do-not-buy window), "reminder"
    (lots alerted at least `[harvest] remind_after_s` ago, still under water, never
    re-armed; off by default).
    """

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
    # How old the oldest of those venues' prices was at the tick (ms, event time).
    consensus_age_ms: int = 0
    # venues: two or more agreed | persistence: one venue, its price held [prices] hold_s
    # ("" from producers older than the bad-print guard)
    confirmed_by: str = ""
    plan: Plan | None = None  # monitor/plan.py; None only from producers older than plans


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
