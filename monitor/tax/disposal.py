"""A realized disposal of (part of) a lot: the record tax summaries and Form 8949 are built from.

Shared contract between the ledger (which stores them, `monitor.ledger`) and the tax
engine (which sums them, `monitor.tax`). All money is exact Decimal; rounding to cents
happens only in reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Term = Literal["short", "long"]
CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """An amount to the cent, half up: the one rounding of every report (Form 8949)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


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

    @property
    def reported_gain_usd(self) -> Decimal:
        """The gain as reported: proceeds - basis + the disallowed loss (Form 8949 (h))."""
        return self.gain_usd + self.disallowed_loss_usd

    def rounded(self) -> Disposal:
        """This disposal as a report row has it: each amount to the cent once (half up).

        Form 8949 adds rounded rows; `tax summary` and `report harvests` both total these,
        so they agree to the cent."""
        return replace(
            self,
            proceeds_usd=cents(self.proceeds_usd),
            cost_basis_usd=cents(self.cost_basis_usd),
            disallowed_loss_usd=cents(self.disallowed_loss_usd),
        )
