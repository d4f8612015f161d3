"""The lot frame's columns in compact form, for per-alert work without per-lot objects.

Detection touches a handful of lots per alert, but the book holds every open lot: so
the book keeps only small numpy columns beside the frame (same row order) and reads the
exact values from the frame for the lots an alert needs.

- account, wallet, asset: dictionary codes (uint8/16/32) into sorted name lists, so
  sorting by code sorts by name; the rows of one (account, wallet, asset) or (account,
  asset) are found when first asked for (fifo and pool plans), then kept;
- acquisition day: int32 epoch day (monitor.triggers.EPOCH);
- lot_id, quantity and cost basis (exact Decimal) stay in the polars frame only; the
  `LotRow`s of lots an alert used are kept (up to `ROW_CACHE` of them), so a lot that
  fires again costs a dict lookup.

`LotAlertState` is the alert state of some lots in the same columnar form (armed, last
alert, deadline sent): what the book hands the ledger and gets back at start.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from monitor.tax.selection import LotRow
from monitor.tax.windows import Acquisition
from monitor.triggers import EPOCH

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B1 = npt.NDArray[np.bool_]
Code = npt.NDArray[np.unsignedinteger[Any]]
CODE_TYPES = ((pl.UInt8(), 2**8), (pl.UInt16(), 2**16), (pl.UInt32(), 2**32))
EMPTY = np.empty(0, np.int64)
ROW_CACHE = 100_000  # LotRows kept for lots alerts used; cleared when it would grow past this
_MS_PER_DAY = 86_400_000
NEVER = np.iinfo(np.int64).min // 2  # "no alert yet": last_alert_ms of a lot that never alerted


@dataclass(frozen=True, slots=True)
class Codes:
    """One dictionary-encoded string column: `names[codes[i]]` is row i's value."""

    names: list[str]  # sorted
    codes: Code  # the smallest unsigned type that holds len(names) - 1

    @classmethod
    def of(cls, column: pl.Series) -> Codes:
        names = column.unique().sort()
        dtype = next(t for t, top in CODE_TYPES if len(names) <= top)
        index = pl.Series("code", np.arange(len(names)), dtype=dtype)
        codes = column.replace_strict(names, index, return_dtype=dtype)
        return cls(names.to_list(), codes.to_numpy())

    def code_of(self, name: str) -> int | None:
        at = bisect_left(self.names, name)
        return at if at < len(self.names) and self.names[at] == name else None

    def __getitem__(self, row: int) -> str:
        return self.names[int(self.codes[row])]


@dataclass(frozen=True, slots=True)
class LotColumns:
    """Compact columns of a lot frame (portfolio.LOT_SCHEMA), indexed by frame row."""

    frame: pl.DataFrame
    account: Codes
    wallet: Codes
    asset: Codes
    acquired_day: I32  # epoch day of acquisition (UTC)
    _rows: dict[int, LotRow] = field(default_factory=dict)
    _by_day: dict[tuple[int, int], tuple[I32, I64]] = field(default_factory=dict)
    _by_wallet: dict[tuple[str, str, str], I64] = field(default_factory=dict)

    @classmethod
    def of(cls, lots: pl.DataFrame) -> LotColumns:
        days = lots["acquired_at"].dt.epoch("ms") // _MS_PER_DAY
        return cls(
            frame=lots,
            account=Codes.of(lots["account"]),
            wallet=Codes.of(lots["wallet"]),
            asset=Codes.of(lots["asset"]),
            acquired_day=days.cast(pl.Int32).to_numpy(),
        )

    def acquired(self, row: int) -> date:
        return EPOCH + timedelta(days=int(self.acquired_day[row]))

    def row(self, i: int) -> LotRow:
        """Row `i` as the plan sees it (its own cost basis)."""
        return self.rows([i])[0]

    def rows(self, rows: I64 | list[int]) -> list[LotRow]:
        """The rows as the plan sees them, read from the frame once per lot (then kept)."""
        found = [self._rows.get(int(r)) for r in rows]
        missing = sorted({int(r) for r, lot in zip(rows, found, strict=True) if lot is None})
        if not missing:
            return [lot for lot in found if lot is not None]
        if len(self._rows) + len(missing) > ROW_CACHE:
            self._rows.clear()
        ids, qty, basis = self.amounts(missing)
        fresh = {
            r: LotRow(lot_id, self.acquired(r), q, b)
            for r, lot_id, q, b in zip(missing, ids, qty, basis, strict=True)
        }
        if len(missing) <= ROW_CACHE:
            self._rows.update(fresh)
        return [fresh[int(r)] if lot is None else lot for r, lot in zip(rows, found, strict=True)]

    def amounts(self, rows: I64 | list[int]) -> tuple[list[str], list[Decimal], list[Decimal]]:
        """lot_id, exact quantity and exact cost basis of `rows` (frame order as given)."""
        index = pl.Series("row", rows, dtype=pl.Int64)
        picked = self.frame.select(pl.col("lot_id", "quantity", "cost_basis_usd").gather(index))
        return (
            picked["lot_id"].to_list(),
            picked["quantity"].to_list(),
            picked["cost_basis_usd"].to_list(),
        )

    def wallet_rows(self, account: str, wallet: str, asset: str) -> I64:
        """Rows of (account, wallet, asset), in frame order (found on first use, then kept)."""
        key = (account, wallet, asset)
        found = self._by_wallet.get(key)
        if found is None:
            codes = (self.account.code_of(account), self.wallet.code_of(wallet))
            asset_code = self.asset.code_of(asset)
            if codes[0] is None or codes[1] is None or asset_code is None:
                return EMPTY
            found = self._by_wallet[key] = np.flatnonzero(
                (self.account.codes == codes[0])
                & (self.wallet.codes == codes[1])
                & (self.asset.codes == asset_code)
            ).astype(np.int64)
        return found

    def account_rows(self, account: str, asset: str) -> I64:
        """Rows of `asset` in `account`, all wallets, in frame order."""
        key = self._key(account, asset)
        if key is None:
            return EMPTY
        return np.sort(self._days_of(key)[1])

    def acquired_between(
        self, account: str, asset: str, first: date, last: date
    ) -> list[Acquisition]:
        """Each lot of (account, asset) acquired from `first` to `last` (both included), as
        the acquisition that opened it; by day, then frame order."""
        key = self._key(account, asset)
        if key is None:
            return []
        days, rows = self._days_of(key)
        lo = int(np.searchsorted(days, (first - EPOCH).days, side="left"))
        hi = int(np.searchsorted(days, (last - EPOCH).days, side="right"))
        if lo >= hi:
            return []
        picked = rows[lo:hi]
        ids, qty, basis = self.amounts(picked)
        wallets = [self.wallet[int(r)] for r in picked]
        return [
            Acquisition(account, asset, self.acquired(int(r)), q, b, lot_id=i, wallet=w)
            for r, i, q, b, w in zip(picked, ids, qty, basis, wallets, strict=True)
        ]

    def _key(self, account: str, asset: str) -> tuple[int, int] | None:
        a, s = self.account.code_of(account), self.asset.code_of(asset)
        return None if a is None or s is None else (a, s)

    def _days_of(self, key: tuple[int, int]) -> tuple[I32, I64]:
        """Acquisition days (ascending) and frame rows of one (account, asset), built once."""
        found = self._by_day.get(key)
        if found is None:
            rows = np.flatnonzero(
                (self.account.codes == key[0]) & (self.asset.codes == key[1])
            ).astype(np.int64)
            by = np.argsort(self.acquired_day[rows], kind="stable")
            found = self._by_day[key] = (self.acquired_day[rows][by], rows[by])
        return found


@dataclass(frozen=True, slots=True)
class LotAlertState:
    """The alert state of some lots (same order in every column): what the ledger keeps."""

    lot_ids: list[str]
    armed: B1
    last_alert_ms: I64  # NEVER: no alert yet
    deadline_sent: B1

    def __len__(self) -> int:
        return len(self.lot_ids)

    @classmethod
    def empty(cls) -> LotAlertState:
        return cls([], np.empty(0, np.bool_), EMPTY, np.empty(0, np.bool_))
