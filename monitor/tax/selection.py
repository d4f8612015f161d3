"""Which lots a harvest sells, and how much: lot order, caps, the venue's step size.

Orders (`[harvest] lot_selection`), over the lots that crossed their trigger:
`max_loss` (largest loss at the price first: specific identification), `hifo`
(highest unit cost first), `fifo` (oldest first). The quantity is capped by
`max_sell_usd`, rounded down to the venue's step size, and taken along that order, so
only the last lot taken can be sold in part; a harvest never sells more than is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from monitor.tax.rules import ZERO

Selection = Literal["max_loss", "hifo", "fifo", "lifo"]
QUANTUM = Decimal("1e-18")  # the finest quantity and amount the ledger stores


@dataclass(frozen=True, slots=True)
class LotRow:
    """An open lot as the plan sees it: exact quantity and the cost basis that applies."""

    lot_id: str
    acquired: date
    quantity: Decimal
    cost_basis: Decimal  # the lot's own (specific), or its share of an average-cost pool


@dataclass(frozen=True, slots=True)
class Take:
    """`quantity` units of `lot`, with the matching part of its cost basis."""

    lot: LotRow
    quantity: Decimal
    cost_basis: Decimal


def order_lots(lots: Sequence[LotRow], how: Selection, price: Decimal) -> list[LotRow]:
    """The lots in the order a harvest sells them (ties broken by acquisition, lot id)."""
    if how == "max_loss":
        return sorted(
            lots, key=lambda r: (-(r.cost_basis - r.quantity * price), r.acquired, r.lot_id)
        )
    if how == "hifo":
        return sorted(lots, key=lambda r: (-(r.cost_basis / r.quantity), r.acquired, r.lot_id))
    if how == "lifo":  # newest day first (uk: the same day's units are matched first)
        return sorted(lots, key=lambda r: (-r.acquired.toordinal(), r.lot_id))
    return sorted(lots, key=lambda r: (r.acquired, r.lot_id))


def round_down(quantity: Decimal, step: Decimal) -> Decimal:
    """`quantity` rounded down to a multiple of `step` (step 0: unchanged)."""
    if step <= 0:
        return quantity
    return (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step


def sell_quantity(
    held: Decimal, price: Decimal, step: Decimal, min_notional: Decimal, max_sell_usd: Decimal
) -> tuple[Decimal, str]:
    """The quantity to sell out of `held`, or zero and the reason it cannot be sold."""
    quantity = held
    if max_sell_usd > 0 and quantity * price > max_sell_usd:
        quantity = round_down(max_sell_usd / price, QUANTUM)
    quantity = round_down(quantity, step)
    if quantity <= 0:
        return ZERO, "below_step_size"
    if quantity * price < min_notional:
        return ZERO, "below_min_notional"
    return quantity, ""


def take(ordered: Sequence[LotRow], quantity: Decimal) -> list[Take]:
    """`quantity` units along `ordered`; the last lot taken may be taken in part."""
    takes: list[Take] = []
    left = quantity
    for lot in ordered:
        if left <= 0:
            break
        part = min(left, lot.quantity)
        basis = lot.cost_basis
        if part != lot.quantity:  # pro rata, to 18 places so that totals stay exact sums
            basis = (lot.cost_basis * part / lot.quantity).quantize(QUANTUM)
        takes.append(Take(lot, part, basis))
        left -= part
    return takes
