"""Taking imported lots out of the ledger (`lots remove`): a mistake undone, on the record.

A removed lot is closed with nothing left open, and a `lot_removals` row keeps what was
open of it, why, and when, so the ledger still shows the lot and its removal. Only
imported lots with no sale can go: a sale is part of the tax record, and a rebuy lot
is the executor's own. A removal is all or nothing: one lot that cannot go stops it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.errors import LedgerError
from monitor.ledger.migrations import utc_now


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """One `lots import` that added lots: what it added and what is left of it."""

    batch: int
    file: str
    imported_at: str
    lots: int  # added by the import
    open: int  # still open now
    removed: int


def batches(conn: sqlite3.Connection) -> list[ImportBatch]:
    """Every import batch, oldest first."""
    rows = conn.execute(
        "SELECT b.batch, b.file, b.imported_at, b.lots, "
        "(SELECT COUNT(*) FROM lots l WHERE l.batch = b.batch AND l.status = 'open'), "
        "(SELECT COUNT(*) FROM lot_removals r WHERE r.batch = b.batch) "
        "FROM import_batches b ORDER BY b.batch"
    ).fetchall()
    return [ImportBatch(*row) for row in rows]


def lots_of_batch(conn: sqlite3.Connection, batch: int) -> list[str]:
    """The lot ids a batch added that are not removed yet; raises if there is no such batch."""
    if conn.execute("SELECT 1 FROM import_batches WHERE batch = ?", (batch,)).fetchone() is None:
        raise LedgerError(f"there is no import batch {batch}: `harvest-monitor lots batches`")
    rows = conn.execute(
        "SELECT lot_id FROM lots WHERE batch = ? "
        "AND lot_id NOT IN (SELECT lot_id FROM lot_removals) ORDER BY rowid",
        (batch,),
    ).fetchall()
    return [r[0] for r in rows]


def remove_lots(conn: sqlite3.Connection, lot_ids: Sequence[str], reason: str) -> int:
    """Remove `lot_ids` (in one transaction, the caller's); returns how many were removed.

    Refused as a whole, naming each lot, when any is unknown, removed already, not
    imported, being sold, or has a sale recorded.
    """
    problems: list[str] = []
    rows: list[tuple[str, int | None, str, str]] = []
    for lot_id in dict.fromkeys(lot_ids):
        found = conn.execute(
            "SELECT source, reserved_by, open_quantity, open_cost_basis_usd, batch, "
            "(SELECT removed_at FROM lot_removals r WHERE r.lot_id = lots.lot_id), "
            "(SELECT COUNT(*) FROM disposals d WHERE d.lot_id = lots.lot_id) "
            "FROM lots WHERE lot_id = ?",
            (lot_id,),
        ).fetchone()
        problem = _why_not(lot_id, found)
        if problem:
            problems.append(problem)
        else:
            rows.append((lot_id, found[4], found[2], found[3]))
    if problems:
        joiner = "\n" if len(problems) > 1 else " "  # one problem: one line; several: a list
        raise LedgerError("nothing removed:" + joiner + "\n".join(problems))
    now = utc_now()
    conn.executemany(
        "INSERT INTO lot_removals (lot_id, batch, quantity, cost_basis_usd, reason, removed_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*row, reason, now) for row in rows],
    )
    conn.executemany(
        "UPDATE lots SET open_quantity = '0', open_cost_basis_usd = '0', status = 'closed' "
        "WHERE lot_id = ?",
        [(row[0],) for row in rows],
    )
    return len(rows)


def _why_not(lot_id: str, found: tuple[object, ...] | None) -> str:
    """Why a lot cannot be removed ('' when it can)."""
    if found is None:
        return f"lot {lot_id!r} is not in the ledger"
    source, reserved_by, _, _, _, removed_at, sales = found
    if removed_at:
        return f"lot {lot_id!r} was removed already ({removed_at})"
    if not str(source).startswith("import:"):
        return f"lot {lot_id!r} was not imported ({source}): only imported lots can be removed"
    if reserved_by:
        return f"lot {lot_id!r} is being sold by intent {reserved_by}: wait until it ends"
    if sales:
        return (
            f"lot {lot_id!r} has {sales} sale(s) recorded: they are part of your tax record, "
            "so the lot stays"
        )
    return ""
