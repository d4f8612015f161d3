"""Lots and lot events in the ledger: import, the open-lot frame, closing and opening.

A lot keeps what it was acquired as (quantity, basis, date) and what is still open of
it. Every change is a lot event: `opened` (import), `partially_closed` / `closed` (a
harvest sold some or all of it), `rebuy_opened` (a rebuy created it with its new basis
and date). Amounts are exact: a partial close takes basis pro rata rounded to 18
places, and the open remainder is what is left, so the parts always add up.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from monitor.errors import PortfolioError
from monitor.ledger.database import dec, undec
from monitor.ledger.migrations import iso, utc_now
from monitor.portfolio import MAX_REPORTED, STEP_ROWS, load_portfolio
from monitor.progress import Step
from monitor.tax.disposal import Disposal

if TYPE_CHECKING:
    from monitor.tax.rules import TaxRules

PLACES = Decimal(1).scaleb(-18)  # the lot frame's Decimal(38, 18)
ZERO = Decimal(0)
WRITE_CHUNK = 20_000  # lots inserted per statement batch (a progress step)
COMPARED = ("account", "wallet", "asset", "quantity", "cost_basis_usd", "acquired_at")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `lots import` did: lots added (as import batch `batch`), lots already there."""

    added: int
    unchanged: int
    batch: int | None = None  # None when nothing was added
    removed: int = 0  # lots of the file removed earlier (`lots remove`): not added again
    groups: frozenset[tuple[str, str]] = frozenset()  # (account, asset) of the lots added


def parse_time(text: str) -> datetime:
    """The ledger's time text back to an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def exact_share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """total * part / whole, rounded to 18 places (the caller keeps the remainder exact)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return (total * part / whole).quantize(PLACES, rounding=ROUND_HALF_EVEN)


def import_file(
    conn: sqlite3.Connection,
    path: str | Path,
    on_step: Step | None = None,
    *,
    allow_future: bool = False,
) -> ImportResult:
    """Import a portfolio CSV (validated like the loader); idempotent by lot_id.

    A lot_id already in the ledger with the same values is skipped; with different
    values the whole import is refused, naming each `file:line`. Call inside a
    transaction: either every new lot is added or none.
    """
    lots = load_portfolio(path, on_step, allow_future=allow_future)
    lines = _lines_by_lot_id(Path(path))
    return import_frame(conn, lots, f"import:{Path(path).name}", str(path), lines, on_step)


def import_frame(
    conn: sqlite3.Connection,
    lots: pl.DataFrame,
    source: str,
    where: str,
    lines: dict[str, int] | None = None,
    on_step: Step | None = None,
) -> ImportResult:
    """Import a lot frame (LOT_SCHEMA); see `import_file`. `on_step("writing", done,
    total)` reports the rows written, a chunk at a time."""
    known: dict[str, tuple[object, ...]] = {}
    removed: set[str] = set()
    ids = lots["lot_id"].to_list()
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        marks = ",".join("?" * len(part))
        for row in conn.execute(
            f"SELECT lot_id, {', '.join(COMPARED)}, "
            "EXISTS (SELECT 1 FROM lot_removals r WHERE r.lot_id = lots.lot_id) "
            f"FROM lots WHERE lot_id IN ({marks})",
            part,
        ):
            known[row[0]] = row[1:-1]
            if row[-1]:
                removed.add(row[0])
    errors: list[str] = []
    new_rows: list[tuple[object, ...]] = []
    now = utc_now()
    for i, lot in enumerate(lots.iter_rows(named=True)):
        if on_step is not None and i % STEP_ROWS == 0:
            on_step("checking lots", i, lots.height)
        values = (
            lot["account"],
            lot["wallet"],
            lot["asset"],
            dec(lot["quantity"]),
            dec(lot["cost_basis_usd"]),
            iso(lot["acquired_at"]),
        )
        stored = known.get(lot["lot_id"])
        if stored is None:
            new_rows.append((lot["lot_id"], *values))
            continue
        diffs = _differences(stored, values)
        if diffs:
            line = (lines or {}).get(lot["lot_id"])
            at = f"{where}:{line}" if line else where
            was = (
                "was removed from the ledger (lots remove); it had"
                if lot["lot_id"] in removed
                else "is already in the ledger with"
            )
            errors.append(
                f"{at}: lot_id: {lot['lot_id']!r} {was} "
                f"{'; '.join(diffs)}: a lot is imported once; give a changed lot a new lot_id"
            )
    if on_step is not None:
        on_step("checking lots", lots.height, lots.height)
    if errors:
        shown = errors[:MAX_REPORTED]
        more = [f"... and {len(errors) - len(shown)} more"] if len(errors) > len(shown) else []
        raise PortfolioError(
            "\n".join([f"{where}: {len(errors)} conflicting lot(s)", *shown, *more])
        )
    skipped = len(removed)  # removed lots stay removed: importing the file again skips them
    if not new_rows:
        return ImportResult(added=0, unchanged=lots.height - skipped, removed=skipped)
    batch = conn.execute(
        "INSERT INTO import_batches (source, file, lots, imported_at) VALUES (?, ?, ?, ?)",
        (source, where, len(new_rows), now),
    ).lastrowid
    for start in range(0, len(new_rows), WRITE_CHUNK):
        if on_step is not None:
            on_step("writing lots", start, len(new_rows))
        part = new_rows[start : start + WRITE_CHUNK]
        conn.executemany(
            "INSERT INTO lots (lot_id, account, wallet, asset, quantity, cost_basis_usd, "
            "acquired_at, open_quantity, open_cost_basis_usd, status, source, created_at, batch) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
            [(*r, r[4], r[5], source, now, batch) for r in part],
        )
        conn.executemany(
            "INSERT INTO lot_events (lot_id, kind, quantity, cost_basis_usd, at, recorded_at) "
            "VALUES (?, 'opened', ?, ?, ?, ?)",
            [(r[0], r[4], r[5], r[6], now) for r in part],
        )
    if on_step is not None:
        on_step("writing lots", len(new_rows), len(new_rows))
    return ImportResult(
        added=len(new_rows),
        unchanged=lots.height - len(new_rows) - skipped,
        batch=batch,
        removed=skipped,
        groups=frozenset((str(r[1]), str(r[3])) for r in new_rows),
    )


def _differences(stored: Sequence[object], given: Sequence[object]) -> list[str]:
    out = []
    for name, old, new in zip(COMPARED, stored, given, strict=True):
        same = (
            Decimal(str(old)) == Decimal(str(new))
            if name in ("quantity", "cost_basis_usd")
            else old == new
        )
        if not same:
            out.append(f"{name} {old} (this file: {new})")
    return out


def _lines_by_lot_id(path: Path) -> dict[str, int]:
    """lot_id -> line number in the CSV (the loader has validated it already)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if "lot_id" not in header:
            return {}
        column = header.index("lot_id")
        return {
            row[column].strip(): reader.line_num
            for row in reader
            if len(row) > column and row[column].strip()
        }


def reserve(conn: sqlite3.Connection, intent_id: str, plan: Sequence[tuple[str, Decimal]]) -> str:
    """Reserve the lots of a plan for `intent_id`; returns why not ('' when reserved).

    A lot can be in one active intent only: this is what stops two alerts (or a restart)
    from selling the same lot twice.
    """
    for lot_id, quantity in plan:
        row = conn.execute(
            "SELECT status, open_quantity, reserved_by FROM lots WHERE lot_id = ?", (lot_id,)
        ).fetchone()
        if row is None:
            return f"lot {lot_id} is not in the ledger"
        status, open_qty, reserved_by = row
        if reserved_by and reserved_by != intent_id:
            return f"lot {lot_id} is already being sold by intent {reserved_by}"
        if status != "open":
            return f"lot {lot_id} is closed"
        if undec(open_qty) < quantity:
            return f"lot {lot_id} holds {open_qty}, the plan sells {quantity}"
    for lot_id, _ in plan:
        conn.execute("UPDATE lots SET reserved_by = ? WHERE lot_id = ?", (intent_id, lot_id))
    return ""


def release(conn: sqlite3.Connection, intent_id: str) -> None:
    """Lift an ended intent's reservations."""
    conn.execute("UPDATE lots SET reserved_by = NULL WHERE reserved_by = ?", (intent_id,))


def close_for_sale(
    conn: sqlite3.Connection,
    *,
    intent_id: str,
    alert_id: str,
    plan: Sequence[tuple[str, Decimal]],
    filled: Decimal,
    net_proceeds: Decimal,
    sold_at: datetime,
    rules: TaxRules | None = None,
) -> list[Disposal]:
    """Close `filled` units over the plan's lots in order, then book the sale by the pack.

    The lots closed are the plan's, in its (selection) order; net proceeds are shared pro
    rata by quantity, the last lot taking the remainder. The cost of what was sold, and
    any disallowed loss, are the pack's (`monitor.ledger.books.rebook`: pool, same day,
    windows): one disposal per lot touched, each with the reason. `rules` default to the
    us pack's.
    """
    from monitor.ledger.books import rebook  # books reads this module's rows

    portions: list[tuple[str, Decimal]] = []
    left = filled
    for lot_id, planned in plan:
        if left <= 0:
            break
        take = min(planned, left)
        portions.append((lot_id, take))
        left -= take
    if left > 0:
        raise ValueError(f"intent {intent_id}: filled {filled} is more than the plan's lots")
    proceeds_left = net_proceeds
    when = iso(sold_at)
    groups: set[tuple[str, str]] = set()
    for i, (lot_id, qty) in enumerate(portions):
        account, asset, open_qty_t, open_basis_t = conn.execute(
            "SELECT account, asset, open_quantity, open_cost_basis_usd FROM lots WHERE lot_id = ?",
            (lot_id,),
        ).fetchone()
        groups.add((account, asset))
        open_qty, open_basis = undec(open_qty_t), undec(open_basis_t)
        basis = open_basis if qty == open_qty else exact_share(open_basis, qty, open_qty)
        last = i == len(portions) - 1
        proceeds = proceeds_left if last else exact_share(net_proceeds, qty, filled)
        proceeds_left -= proceeds
        remaining = open_qty - qty
        conn.execute(
            "UPDATE lots SET open_quantity = ?, open_cost_basis_usd = ?, status = ? "
            "WHERE lot_id = ?",
            (
                dec(remaining),
                dec(open_basis - basis),
                "open" if remaining > 0 else "closed",
                lot_id,
            ),
        )
        conn.execute(
            "INSERT INTO lot_events (lot_id, kind, quantity, cost_basis_usd, proceeds_usd, "
            "intent_id, at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                lot_id,
                "partially_closed" if remaining > 0 else "closed",
                dec(qty),
                dec(basis),
                dec(proceeds),
                intent_id,
                when,
                utc_now(),
            ),
        )
    disposals: list[Disposal] = []
    for account, asset in sorted(groups):
        booked = rebook(conn, rules or default_rules(), account, asset)
        sale = booked.sales.get(intent_id)
        if sale is None:
            continue
        conn.execute(
            "UPDATE disposals SET alert_id = ? WHERE intent_id = ? AND alert_id = ''",
            (alert_id, intent_id),
        )
        for d in sale.rows:  # the lot events say what the pack booked
            conn.execute(
                "UPDATE lot_events SET cost_basis_usd = ? WHERE intent_id = ? AND lot_id = ?",
                (dec(d.cost_basis_usd), intent_id, d.lot_id),
            )
        disposals.extend(replace(d, alert_id=d.alert_id or alert_id) for d in sale.rows)
    return disposals


def default_rules() -> TaxRules:
    """The rules a ledger books by when none are given: the default `[tax]` (us pack)."""
    from monitor.settings import TaxSettings
    from monitor.tax.rules import tax_rules

    return tax_rules(TaxSettings())


def insert_disposal(conn: sqlite3.Connection, d: Disposal, intent_id: str) -> None:
    conn.execute(
        "INSERT INTO disposals (lot_id, account, wallet, asset, quantity, acquired_on, sold_on, "
        "proceeds_usd, cost_basis_usd, term, harvest, alert_id, intent_id, disallowed_loss_usd, "
        "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            d.lot_id,
            d.account,
            d.wallet,
            d.asset,
            dec(d.quantity),
            d.acquired_on.isoformat(),
            d.sold_on.isoformat(),
            dec(d.proceeds_usd),
            dec(d.cost_basis_usd),
            d.term,
            int(d.harvest),
            d.alert_id,
            intent_id,
            dec(d.disallowed_loss_usd),
            d.reason,
        ),
    )


def open_rebuy_lot(
    conn: sqlite3.Connection,
    *,
    intent_id: str,
    account: str,
    wallet: str,
    asset: str,
    quantity: Decimal,
    cost_basis: Decimal,
    acquired_at: datetime,
) -> str:
    """A new lot bought back by a harvest's rebuy (fees in its basis); returns its lot_id."""
    lot_id = f"{intent_id}-rebuy"
    now = utc_now()
    conn.execute(
        "INSERT INTO lots (lot_id, account, wallet, asset, quantity, cost_basis_usd, acquired_at, "
        "open_quantity, open_cost_basis_usd, status, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
        (
            lot_id,
            account,
            wallet,
            asset,
            dec(quantity),
            dec(cost_basis),
            iso(acquired_at),
            dec(quantity),
            dec(cost_basis),
            f"rebuy:{intent_id}",
            now,
        ),
    )
    conn.execute(
        "INSERT INTO lot_events (lot_id, kind, quantity, cost_basis_usd, intent_id, at, "
        "recorded_at) VALUES (?, 'rebuy_opened', ?, ?, ?, ?, ?)",
        (lot_id, dec(quantity), dec(cost_basis), intent_id, iso(acquired_at), now),
    )
    return lot_id


def disposals_in(conn: sqlite3.Connection, year: int | None = None) -> list[Disposal]:
    """Realized disposals (of `year`, or all), by sale day then record order."""
    query = (
        "SELECT lot_id, account, wallet, asset, quantity, acquired_on, sold_on, proceeds_usd, "
        "cost_basis_usd, term, harvest, alert_id, disallowed_loss_usd, reason FROM disposals"
    )
    if year is None:
        rows = conn.execute(query + " ORDER BY sold_on, id").fetchall()
    else:
        rows = conn.execute(
            query + " WHERE sold_on BETWEEN ? AND ? ORDER BY sold_on, id",
            (f"{year:04d}-01-01", f"{year:04d}-12-31"),
        ).fetchall()
    return [
        Disposal(
            lot_id=r[0],
            account=r[1],
            wallet=r[2],
            asset=r[3],
            quantity=undec(r[4]),
            acquired_on=date.fromisoformat(r[5]),
            sold_on=date.fromisoformat(r[6]),
            proceeds_usd=undec(r[7]),
            cost_basis_usd=undec(r[8]),
            term="long" if r[9] == "long" else "short",
            harvest=bool(r[10]),
            alert_id=r[11],
            disallowed_loss_usd=undec(r[12]),
            reason=r[13],
        )
        for r in rows
    ]
