"""The lot frame's columns as Python lists, for per-alert work without polars overhead.

Detection touches a handful of lots per alert; gathering them from the polars frame
costs more than the arithmetic. The book keeps these lists beside the frame (same row
order), built once: exact Decimal quantity and basis, account, wallet, acquisition day.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import polars as pl

from monitor.tax.selection import LotRow
from monitor.tax.windows import Acquisition

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LotColumns:
    """Column lists of a lot frame (portfolio.LOT_SCHEMA), indexed by frame row."""

    lot_id: list[str]
    account: list[str]
    wallet: list[str]
    asset: list[str]
    quantity: list[Decimal]
    cost_basis: list[Decimal]
    acquired: list[date]

    @classmethod
    def of(cls, lots: pl.DataFrame) -> LotColumns:
        return cls(
            lot_id=lots["lot_id"].to_list(),
            account=lots["account"].to_list(),
            wallet=lots["wallet"].to_list(),
            asset=lots["asset"].to_list(),
            quantity=lots["quantity"].to_list(),
            cost_basis=lots["cost_basis_usd"].to_list(),
            acquired=[d.date() for d in lots["acquired_at"].to_list()],
        )

    def row(self, i: int) -> LotRow:
        """Row `i` as the plan sees it (its own cost basis)."""
        return LotRow(self.lot_id[i], self.acquired[i], self.quantity[i], self.cost_basis[i])

    def wallet_rows(self) -> dict[tuple[str, str, str], I64]:
        """Rows of each (account, wallet, asset), in frame order."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, key in enumerate(zip(self.account, self.wallet, self.asset, strict=True)):
            groups.setdefault(key, []).append(i)
        return {key: np.asarray(rows, dtype=np.int64) for key, rows in groups.items()}

    def acquisitions(self) -> Iterator[Acquisition]:
        """Each lot as the acquisition that opened it (for the wash-sale windows)."""
        for i, lot_id in enumerate(self.lot_id):
            yield Acquisition(
                self.account[i],
                self.asset[i],
                self.acquired[i],
                self.quantity[i],
                self.cost_basis[i],
                lot_id=lot_id,
                wallet=self.wallet[i],
            )
