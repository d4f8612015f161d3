"""LotBook: the open tax lots (a polars frame) and a per-asset index of trigger prices.

A tick at price p harvests exactly the lots whose trigger >= p. Triggers are kept sorted
per asset, so a tick costs two binary searches plus the lots that actually fire. Each
asset's lots sorted by trigger are split in two by `armed_end`: lots before it are armed,
lots from it on have alerted and wait to re-arm. Both firing (trigger >= p) and
re-arming (trigger <= p / (1 + rearm_pct)) select a contiguous run of that order, so the
armed/disarmed state of a whole asset is one integer.

An asset's index is rebuilt only when a lot in it changes character (turns long-term,
which changes its tax rate and so its trigger), when the rules change, or when ticks go
back to an earlier day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from monitor.triggers import F64, I32, TriggerRules, epoch_day, long_term_from, trigger_prices

I64 = npt.NDArray[np.int64]
NEVER = np.iinfo(np.int64).min // 2  # "no alert yet" for the cooldown


@dataclass(slots=True)
class AssetIndex:
    """Lots of one asset and their trigger order as of `day`."""

    rows: I64  # frame row of each of the asset's lots
    qty: F64
    unit_basis: F64
    lt_day: I32  # first epoch day the lot is long-term
    order: I64 = field(default_factory=lambda: np.empty(0, np.int64))  # local positions by trigger
    triggers: F64 = field(default_factory=lambda: np.empty(0, np.float64))  # ascending
    armed_end: int = 0
    day: int = -1
    next_change_day: int = -1

    def rebuild(self, day: int, rules: TriggerRules) -> None:
        """Recompute every trigger as of `day` and re-arm all lots (cooldown still applies)."""
        long_term = self.lt_day <= day
        rate = np.where(long_term, rules.long_term_rate, rules.short_term_rate)
        trig = trigger_prices(self.qty, self.unit_basis, rate, rules)
        self.order = np.argsort(trig, kind="stable").astype(np.int64)
        self.triggers = trig[self.order]
        self.armed_end = len(self.order)
        self.day = day
        upcoming = self.lt_day[self.lt_day > day]
        self.next_change_day = int(upcoming.min()) if upcoming.size else np.iinfo(np.int32).max


@dataclass(frozen=True, slots=True)
class Crossing:
    """Lots of one asset that crossed their trigger on one tick (frame rows)."""

    asset: str
    rows: I64
    suppressed: int  # crossed, but still inside their cooldown


class LotBook:
    """Open lots plus the trigger index; built once from a lot frame (portfolio or ledger)."""

    def __init__(
        self, lots: pl.DataFrame, rules: TriggerRules, rearm_pct: float, cooldown_s: float
    ) -> None:
        self.frame = lots
        self.rules = rules
        self.rearm_factor = 1.0 + rearm_pct
        self.cooldown_ms = int(cooldown_s * 1000)
        self.last_alert_ms: I64 = np.full(lots.height, NEVER, dtype=np.int64)
        self.rebuilds = 0
        self._assets: dict[str, AssetIndex] = self._group(lots)

    @staticmethod
    def _group(lots: pl.DataFrame) -> dict[str, AssetIndex]:
        qty = lots["quantity"].cast(pl.Float64).to_numpy()
        basis = lots["cost_basis_usd"].cast(pl.Float64).to_numpy()
        acquired = lots["acquired_at"].dt.date().to_list()
        lt_day = _lt_days(acquired)
        groups = (
            lots.select(pl.col("asset"))
            .with_row_index("row")
            .group_by("asset", maintain_order=True)
            .agg(pl.col("row"))
        )
        index: dict[str, AssetIndex] = {}
        for asset, rows_list in groups.iter_rows():
            rows = np.asarray(rows_list, dtype=np.int64)
            index[asset] = AssetIndex(
                rows=rows,
                qty=qty[rows],
                unit_basis=basis[rows] / qty[rows],
                lt_day=lt_day[rows],
            )
        return index

    @property
    def assets(self) -> list[str]:
        return list(self._assets)

    @property
    def lot_count(self) -> int:
        return self.frame.height

    def crossings(self, asset: str, price: float, ts_ms: int) -> Crossing | None:
        """Lots of `asset` that cross at `price` on a tick at `ts_ms`, updating arm state."""
        idx = self._assets.get(asset)
        if idx is None:
            return None
        day = ts_ms // 86_400_000
        if day < idx.day or day >= idx.next_change_day:
            idx.rebuild(day, self.rules)
            self.rebuilds += 1
        triggers = idx.triggers
        rearm_to = int(np.searchsorted(triggers, price / self.rearm_factor, side="right"))
        if rearm_to > idx.armed_end:
            idx.armed_end = rearm_to
        fire_from = int(np.searchsorted(triggers, price, side="left"))
        if fire_from >= idx.armed_end:
            return None
        local = idx.order[fire_from : idx.armed_end]
        idx.armed_end = fire_from
        rows = idx.rows[local]
        due = self.last_alert_ms[rows] + self.cooldown_ms <= ts_ms
        fired = rows[due]
        self.last_alert_ms[fired] = ts_ms
        suppressed = int(rows.size - fired.size)
        if fired.size == 0:
            return Crossing(asset, fired, suppressed) if suppressed else None
        return Crossing(asset, np.sort(fired), suppressed)

    def trigger_of(self, asset: str) -> tuple[I64, F64]:
        """Frame rows and current triggers of an asset's lots (sorted by trigger)."""
        idx = self._assets[asset]
        return idx.rows[idx.order], idx.triggers

    def lots_at(self, rows: I64) -> pl.DataFrame:
        """The lot rows (exact Decimal columns) for building an alert."""
        return self.frame.select(pl.all().gather(rows))


def _lt_days(acquired: list[date]) -> I32:
    """Long-term-from epoch day per lot (memoized by acquisition date: lots share dates)."""
    cache: dict[date, int] = {}
    out = np.empty(len(acquired), dtype=np.int32)
    for i, day in enumerate(acquired):
        value = cache.get(day)
        if value is None:
            value = cache[day] = epoch_day(long_term_from(day))
        out[i] = value
    return out
