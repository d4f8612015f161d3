"""Exposure: how much of the portfolio is under water, per asset, at the last price.

Feeds two gauges ops watch in Grafana: `hm_lots_under_water{asset}` and
`hm_unrealized_loss_usd{asset}` (the sum of cost basis minus value over the lots that
are under water; lots in profit count zero). Like the trigger index, a tick costs one
binary search: each asset's lots are sorted by unit basis with suffix sums of basis and
quantity, so the lots under water at price p (unit basis > p) are one contiguous tail.
float64 is fine here: these are gauges for a dashboard, never amounts on an alert.

A tick only records the asset's last price (a dict store): the gauges are computed from
it when they are scraped (`Gauge.set_function`), not on every tick. A gauge child holds
its exposure weakly: once the detector drops an exposure (the book's lots changed) and
no newer one has the asset, the asset has no lots and its gauges read 0.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from monitor import metrics
from monitor.triggers import F64


@dataclass(frozen=True, slots=True)
class _AssetExposure:
    unit_basis: F64  # ascending
    basis_tail: F64  # basis_tail[i] = sum of cost basis of lots i.. (one extra 0 at the end)
    qty_tail: F64  # same for quantity


class Exposure:
    """Per-asset under-water lots and unrealized loss of a lot frame, updated per price."""

    def __init__(self, lots: pl.DataFrame) -> None:
        self._assets: dict[str, _AssetExposure] = {}
        self.prices: dict[str, float] = {}  # last price per asset (update)
        if lots.height == 0:
            return
        frame = lots.select(
            pl.col("asset"),
            pl.col("quantity").cast(pl.Float64).alias("qty"),
            pl.col("cost_basis_usd").cast(pl.Float64).alias("basis"),
        ).with_columns((pl.col("basis") / pl.col("qty")).alias("unit"))
        for (asset,), group in frame.sort("unit").group_by("asset", maintain_order=True):
            name = str(asset)
            self._assets[name] = _AssetExposure(
                unit_basis=group["unit"].to_numpy(),
                basis_tail=_tail_sums(group["basis"].to_numpy()),
                qty_tail=_tail_sums(group["qty"].to_numpy()),
            )
            metrics.LOTS_UNDER_WATER.labels(name).set_function(_gauge(self, name, 0))
            metrics.UNREALIZED_LOSS.labels(name).set_function(_gauge(self, name, 1))

    @property
    def assets(self) -> list[str]:
        return sorted(self._assets)

    def at(self, asset: str, price: float) -> tuple[int, float]:
        """(lots under water, unrealized loss in USD) of `asset` at `price`."""
        exp = self._assets.get(asset)
        if exp is None:
            return 0, 0.0
        first = int(np.searchsorted(exp.unit_basis, price, side="right"))
        count = len(exp.unit_basis) - first
        loss = float(exp.basis_tail[first] - price * exp.qty_tail[first])
        return count, max(0.0, loss)

    def update(self, asset: str, price: float) -> None:
        """A new price of `asset`: its gauges read `at(asset, price)` from now on (assets
        outside the portfolio have no gauges)."""
        self.prices[asset] = price

    def current(self, asset: str) -> tuple[int, float]:
        """`at` the asset's last price; (0, 0.0) before its first."""
        price = self.prices.get(asset)
        return (0, 0.0) if price is None else self.at(asset, price)

    def carry_prices(self, older: Exposure) -> None:
        """Start from `older`'s last prices (a new exposure over changed lots)."""
        self.prices = {**older.prices, **self.prices}


def _gauge(exposure: Exposure, asset: str, field: int) -> Callable[[], float]:
    """The value of one of `asset`'s gauges at scrape time (0 once `exposure` is gone)."""
    ref = weakref.ref(exposure)

    def value() -> float:
        live = ref()
        return 0.0 if live is None else float(live.current(asset)[field])

    return value


def _tail_sums(values: F64) -> F64:
    tail: F64 = np.zeros(len(values) + 1, dtype=np.float64)
    tail[:-1] = np.cumsum(values[::-1])[::-1]
    return tail
