"""A realized disposal of (part of) a lot: the record tax summaries and Form 8949 are built from.

Shared contract between the ledger (which stores them, `monitor.ledger`) and the tax
engine (which sums them, `monitor.tax`). All money is exact Decimal; rounding to cents
happens only in reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

Term = Literal["short", "long"]


@dataclass(frozen=True, slots=True)
class Disposal:
    """`quantity` units of lot `lot_id` sold on `sold_on` for `proceeds_usd` (after fees)."""

    lot_id: str
    account: str
    wallet: str
    asset: str
    quantity: Decimal
    acquired_on: date
    sold_on: date
    proceeds_usd: Decimal
    cost_basis_usd: Decimal
    term: Term
    harvest: bool = False  # sold by a harvest (vs. an ordinary sale)
    alert_id: str = ""  # the alert the harvest came from, when it did
    disallowed_loss_usd: Decimal = Decimal(0)  # wash-sale / superficial-loss adjustment
    reason: str = ""  # how the pack matched it (s104, same_day, superficial_loss, ...)

    @property
    def gain_usd(self) -> Decimal:
        """Proceeds minus basis: negative for a loss."""
        return self.proceeds_usd - self.cost_basis_usd
