"""The ledger: the durable record of lots, lot events, alerts, intents, orders and fills.

One SQLite file (WAL) by default, `[ledger] path`. The LotBook is rebuilt from
`open_lots()` at start; `alerts` is the AlertStore alert delivery uses; the executor
keeps its intents, orders and fills in `intents`; `disposals(year)` feeds the tax
summary and the Form 8949 report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import polars as pl

from monitor.ledger import books, lot_reads, removals
from monitor.ledger import lots as lot_rows
from monitor.ledger.alerts import LedgerAlertStore
from monitor.ledger.database import Database, undec
from monitor.ledger.intents import IntentTable
from monitor.ledger.lock import DEFAULT_LEASE_S, WriterLock
from monitor.progress import Step
from monitor.tax.disposal import Disposal
from monitor.tax.rules import TaxRules

if TYPE_CHECKING:
    from monitor.settings import Settings


class Ledger:
    """Open with `Ledger(path).open()` (or `async with`); every call is a short transaction."""

    def __init__(self, path: str | Path, tax: TaxRules | None = None) -> None:
        self.db = Database(path)
        self.tax = tax or lot_rows.default_rules()  # the pack sales are booked by
        self.alerts = LedgerAlertStore(self.db)
        self.intents = IntentTable(self.db, self.tax)
        self.writer: WriterLock | None = None  # set by `lock_writer` (daemons only)

    @classmethod
    def from_settings(cls, settings: Settings, path: str | Path | None = None) -> Ledger:
        """The ledger at `path` (default `[ledger] path`) booking by `[tax]`'s rule pack."""
        from monitor.tax.rules import tax_rules

        return cls(settings.ledger.path if path is None else path, tax=tax_rules(settings.tax))

    @property
    def path(self) -> str:
        return self.db.path

    def open(self) -> Ledger:
        self.db.open()
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self.db.close()

    def lock_writer(self, role: str, lease_s: float = DEFAULT_LEASE_S) -> WriterLock:
        """Take the writer lock for `role` (monitor/ledger/lock.py); LedgerBusyError names the
        live holder. Released by `close`; renewed by running `writer.hold()`."""
        if self.writer is None:
            self.writer = WriterLock(self.db, role, lease_s=lease_s)
        if not self.writer.held:
            self.writer.acquire()
        return self.writer

    async def start(self) -> None:
        await asyncio.to_thread(self.db.open)

    async def stop(self) -> None:
        self.close()

    async def __aenter__(self) -> Ledger:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def schema_version(self) -> int:
        return self.db.version

    def import_lots(
        self, path: str | Path, on_step: Step | None = None, *, allow_future: bool = False
    ) -> lot_rows.ImportResult:
        """Import a portfolio CSV, idempotent by lot_id (see monitor/ledger/lots.py);
        `on_step` follows a large file's reading and writing (monitor.progress); a lot
        acquired after now is refused unless `allow_future`."""
        with self.db.transaction() as conn:
            result = lot_rows.import_file(conn, path, on_step, allow_future=allow_future)
            books.rebook_groups(conn, self.tax, result.groups)
            return result

    def import_frame(self, lots: pl.DataFrame, source: str) -> lot_rows.ImportResult:
        """Import a lot frame already loaded (LOT_SCHEMA); `source` names it in errors."""
        with self.db.transaction() as conn:
            result = lot_rows.import_frame(conn, lots, f"import:{source}", source)
            books.rebook_groups(conn, self.tax, result.groups)
            return result

    def remove_lots(
        self, lot_ids: Sequence[str] = (), *, batch: int | None = None, reason: str
    ) -> int:
        """Remove imported lots (by id, or every lot left of import `batch`) with a record
        in `lot_removals`; all or nothing (see monitor/ledger/removals.py)."""
        with self.db.transaction() as conn:
            ids = list(lot_ids)
            if batch is not None:
                ids += removals.lots_of_batch(conn, batch)
            groups = [
                (str(a), str(s))
                for i in dict.fromkeys(ids)
                for a, s in conn.execute(
                    "SELECT account, asset FROM lots WHERE lot_id = ?", (i,)
                ).fetchall()
            ]
            removed = removals.remove_lots(conn, ids, reason)
            books.rebook_groups(conn, self.tax, groups)  # a removed buy re-costs nothing
            return removed

    def import_batches(self) -> list[removals.ImportBatch]:
        """Every `lots import` that added lots, with what is left of each."""
        with self.db.read() as conn:
            return removals.batches(conn)

    def has_lots(self) -> bool:
        with self.db.read() as conn:
            return conn.execute("SELECT 1 FROM lots LIMIT 1").fetchone() is not None

    def open_lots(self) -> pl.DataFrame:
        """The open lots as the book's lot frame (monitor/portfolio.py LOT_SCHEMA)."""
        with self.db.read() as conn:
            return lot_reads.open_lots(conn)

    def disposals(self, year: int | None = None) -> list[Disposal]:
        """Realized disposals sold in calendar `year` (all years when None), by sale day."""
        with self.db.read() as conn:
            return lot_rows.disposals_in(conn, year)

    def last_harvest_day(self, account: str, asset: str) -> date | None:
        """The day of the account's last harvest sale of `asset`, if any."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT MAX(sold_on) FROM disposals WHERE account = ? AND asset = ? "
                "AND harvest = 1",
                (account, asset),
            ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    def rebook(self, account: str, asset: str) -> None:
        """Book (account, asset) again by this ledger's pack (monitor/ledger/books.py)."""
        with self.db.transaction() as conn:
            books.rebook(conn, self.tax, account, asset)

    def lot_events(self, lot_id: str) -> list[tuple[str, str, str]]:
        """(kind, quantity, cost_basis_usd) of a lot's events, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT kind, quantity, cost_basis_usd FROM lot_events WHERE lot_id = ? "
                "ORDER BY id",
                (lot_id,),
            ).fetchall()
        return [(k, q, b) for k, q, b in rows]

    def lot(self, lot_id: str) -> dict[str, object] | None:
        """One lot's row (exact Decimals for amounts), or None."""
        with self.db.read() as conn:
            cursor = conn.execute("SELECT * FROM lots WHERE lot_id = ?", (lot_id,))
            row = cursor.fetchone()
            names = [d[0] for d in cursor.description]
        if row is None:
            return None
        out: dict[str, object] = dict(zip(names, row, strict=True))
        for key in ("quantity", "cost_basis_usd", "open_quantity", "open_cost_basis_usd"):
            out[key] = undec(str(out[key]))
        return out
