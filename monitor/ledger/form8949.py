"""Form 8949 rows from the ledger's disposals: one row per lot (part) sold.

Columns (IRS Form 8949): (a) description, (b) date acquired, (c) date sold, (d)
proceeds, (e) cost or other basis, (f) adjustment code, (g) adjustment amount, (h) gain
or loss = (d) - (e) + (g). Each amount is the disposal's exact amount rounded to cents
once (half up); (h) is computed from the rounded (d), (e), (g), so every row adds up
across, and the totals are the sums of the rows, so they add up down.

Digital assets go in boxes G/H/I (short-term) and J/K/L (long-term) by what the broker
reported on Form 1099-DA: `basis` (proceeds and basis reported: G/J), `proceeds` (basis
not reported: H/K), `none` (no 1099-DA: I/L).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Literal

from monitor.tax.disposal import Disposal

Reporting = Literal["basis", "proceeds", "none"]
BOXES: dict[Reporting, tuple[str, str]] = {
    "basis": ("G", "J"),
    "proceeds": ("H", "K"),
    "none": ("I", "L"),
}
HEADER = (
    "part",
    "box",
    "description",
    "date_acquired",
    "date_sold",
    "proceeds",
    "cost_basis",
    "adjustment_code",
    "adjustment",
    "gain_or_loss",
    "account",
    "wallet",
    "lot_id",
    "alert_id",
    "reason",
)


@dataclass(frozen=True, slots=True)
class Row:
    part: str  # I (short-term) | II (long-term)
    box: str
    description: str
    date_acquired: str  # MM/DD/YYYY, as on the form
    date_sold: str
    proceeds: Decimal
    cost_basis: Decimal
    code: str
    adjustment: Decimal
    gain_or_loss: Decimal
    account: str
    wallet: str
    lot_id: str
    alert_id: str
    reason: str = ""  # how the rule pack booked it (matching rule, window)


@dataclass(frozen=True, slots=True)
class Totals:
    """Column totals of one box (the form's line 2 / line 4)."""

    box: str
    rows: int
    proceeds: Decimal
    cost_basis: Decimal
    adjustment: Decimal
    gain_or_loss: Decimal


def to_row(d: Disposal, reporting: Reporting = "none") -> Row:
    short_box, long_box = BOXES[reporting]
    r = d.rounded()  # the one rounding rule (monitor/tax/disposal.py), as tax summary's
    proceeds, basis = r.proceeds_usd, r.cost_basis_usd
    # A disallowed (wash-sale) loss is added back: code W, a positive adjustment.
    adjustment = r.disallowed_loss_usd
    return Row(
        part="I" if d.term == "short" else "II",
        box=short_box if d.term == "short" else long_box,
        description=f"{format(d.quantity.normalize(), 'f')} {d.asset}",
        date_acquired=d.acquired_on.strftime("%m/%d/%Y"),
        date_sold=d.sold_on.strftime("%m/%d/%Y"),
        proceeds=proceeds,
        cost_basis=basis,
        code="W" if adjustment else "",
        adjustment=adjustment,
        gain_or_loss=proceeds - basis + adjustment,
        account=d.account,
        wallet=d.wallet,
        lot_id=d.lot_id,
        alert_id=d.alert_id,
        reason=d.reason,
    )


def rows_of(disposals: Iterable[Disposal], reporting: Reporting = "none") -> list[Row]:
    """Rows in form order: Part I (short) before Part II (long), each by date sold."""
    ordered = sorted(disposals, key=lambda d: (d.term != "short", d.sold_on, d.lot_id))
    return [to_row(d, reporting) for d in ordered]


def totals_of(rows: Sequence[Row]) -> list[Totals]:
    """Column totals per box, in form order."""
    out: dict[str, Totals] = {}
    for r in rows:
        t = out.get(r.box) or Totals(r.box, 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0))
        out[r.box] = Totals(
            r.box,
            t.rows + 1,
            t.proceeds + r.proceeds,
            t.cost_basis + r.cost_basis,
            t.adjustment + r.adjustment,
            t.gain_or_loss + r.gain_or_loss,
        )
    return list(out.values())


def write_csv(rows: Sequence[Row], out: IO[str]) -> None:
    """The rows as CSV with a header; amounts as plain two-decimal numbers."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow(
            (
                r.part,
                r.box,
                r.description,
                r.date_acquired,
                r.date_sold,
                f"{r.proceeds:.2f}",
                f"{r.cost_basis:.2f}",
                r.code,
                f"{r.adjustment:.2f}" if r.code else "",
                f"{r.gain_or_loss:.2f}",
                r.account,
                r.wallet,
                r.lot_id,
                r.alert_id,
                r.reason,
            )
        )
