"""LotBook: the open tax lots (a polars frame) and a per-asset index of trigger prices.

A tick at price p harvests exactly the armed lots whose trigger >= p. Each asset's lots are
kept in two runs split by `armed_end`: the armed lots sorted by trigger, then the
disarmed ones (alerted, waiting for the price to climb back to trigger * (1 + rearm_pct))
sorted by trigger. Firing takes the top of the armed run, re-arming the bottom of the
disarmed run, so a tick costs two binary searches plus the lots that actually change.
While every armed trigger is below every disarmed one (always, until a rebuild moves
triggers) a change only moves `armed_end`; otherwise the run that grows is merged back
into order (both halves already sorted: one linear pass).

Per lot the book keeps numpy columns beside the frame: armed, last alert time (the
cooldown) and deadline alert sent. They are the alert state the ledger keeps
(monitor/ledger/alert_state.py): `restore` puts them back at start, `take_state` hands over
the lots whose state changed since the last call, and an index rebuild reads them, so
neither a restart, a daily rebuild nor a fill re-arms a lot. Lots inside their deadline window
(about to turn long-term and lose value) have a second sorted array, searched the same way.
Most ticks change nothing: each asset keeps the band of prices that can neither fire a
lot (above the highest armed or deadline trigger) nor re-arm one (below the lowest
disarmed trigger times 1 + rearm_pct), and a tick inside it costs two float compares.

An asset's index is rebuilt only on daily events: a lot turns long-term or enters its
deadline window, the threshold schedule moves to its next step, ticks go back to an
earlier day; and when a taxpayer's year-to-date position changes (the `ytd` model).
Trigger math lives in monitor/triggers.py, the value of a loss in monitor/tax/netting.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import polars as pl

from monitor.lot_columns import B1, NEVER, Code, LotAlertState, LotColumns
from monitor.settings import Settings, TaxSettings
from monitor.tax.disposal import Term
from monitor.tax.netting import value_curve
from monitor.tax.rules import Position, TaxRules, exact, tax_rules
from monitor.tax.schedule import Schedule
from monitor.tax.windows import Acquisition, AcquisitionLog, DoNotBuy, DoNotBuyList
from monitor.triggers import (
    EPOCH,
    F64,
    I32,
    TriggerRules,
    curve_trigger_prices,
    epoch_day,
    trigger_prices,
)

I64 = npt.NDArray[np.int64]
NO_DAY = int(np.iinfo(np.int32).max)  # a lot that never turns long-term
NO_DUE = int(np.iinfo(np.int64).max)  # no reminder due (no disarmed lot under water)
EMPTY = np.empty(0, np.int64)
Curve = tuple[F64, F64, F64]


@dataclass(frozen=True, slots=True)
class BookRules:
    """What every trigger is computed from: thresholds (possibly scheduled) and the tax rules."""

    thresholds: TriggerRules  # base thresholds, cost rate and the flat float rates
    tax: TaxRules
    schedule: Schedule = field(default_factory=Schedule)
    deadline_days: int = 0

    def on(self, day: int) -> TriggerRules:
        """The thresholds in force on epoch day `day`."""
        return self.schedule.rules_on(EPOCH + timedelta(days=day), self.thresholds)


@dataclass(slots=True)
class AssetIndex:
    """Lots of one asset and their trigger order as of `day`."""

    rows: I64  # frame row of each of the asset's lots
    qty: F64
    unit_basis: F64  # the lot's own, or its average-cost pool's
    lt_day: I32  # first epoch day the lot is long-term (NO_DAY: never)
    account: Code  # account code of each lot (book.accounts)
    order: I64 = field(default_factory=lambda: EMPTY)  # local positions: armed, then disarmed
    triggers: F64 = field(default_factory=lambda: np.empty(0, np.float64))  # ascending per run
    armed_end: int = 0  # order[:armed_end] armed, order[armed_end:] disarmed
    dl_order: I64 = field(default_factory=lambda: EMPTY)  # deadline candidates by trigger
    dl_triggers: F64 = field(default_factory=lambda: np.empty(0, np.float64))
    dl_end: int = 0
    day: int = -1
    next_change_day: int = -1
    # The quiet band (see `LotBook._band`): a price above `fire_above` fires nothing, one
    # with price / (1 + rearm_pct) below `rearm_from` re-arms nothing. Until the first
    # build, every price takes the full path.
    fire_above: float = math.inf
    rearm_from: float = -math.inf
    # Reminders (`remind_after_s`): no disarmed lot can be due before `remind_at` unless
    # the price falls to `remind_below` (the highest disarmed trigger above water).
    remind_at: int = NEVER
    remind_below: float = math.inf


@dataclass(frozen=True, slots=True)
class Crossing:
    """Lots of one asset that crossed their trigger on one tick (frame rows)."""

    asset: str
    rows: I64
    suppressed: int  # crossed, but still inside their cooldown
    deadline_rows: I64 = field(default_factory=lambda: EMPTY)  # under water, deadline near
    reminder_rows: I64 = field(default_factory=lambda: EMPTY)  # still under water, remind


class LotBook:
    """Open lots plus the trigger index; built once from a lot frame (portfolio or ledger)."""

    def __init__(
        self,
        lots: pl.DataFrame,
        rules: TriggerRules | BookRules,
        rearm_pct: float,
        cooldown_s: float,
        remind_after_s: float = 0.0,
    ) -> None:
        self.frame = lots
        self.rules = rules if isinstance(rules, BookRules) else default_book_rules(rules)
        self.rearm_factor = 1.0 + rearm_pct
        self.cooldown_ms = int(cooldown_s * 1000)
        self.remind_ms = int(remind_after_s * 1000)  # 0: no reminders
        self.armed: B1 = np.ones(lots.height, dtype=np.bool_)
        self.last_alert_ms: I64 = np.full(lots.height, NEVER, dtype=np.int64)
        self.deadline_sent: B1 = np.zeros(lots.height, dtype=np.bool_)
        # Rows whose alert state changed since take_state: a list of small arrays, folded
        # into a mask over the book when it grows (nobody takes the state without a ledger).
        self._unsaved: list[I64] = []
        self._unsaved_count = 0
        self._unsaved_mask: B1 | None = None
        self._fold_at = max(4096, lots.height // 8)
        self.rebuilds = 0
        self.columns = LotColumns.of(lots)
        self.accounts: list[str] = self.columns.account.names  # sorted: index = account code
        self._acquisitions: AcquisitionLog | None = None  # built on first use
        self.do_not_buy = DoNotBuyList(self.rules.tax)
        self._positions: dict[str, Position] = {}
        self._curves: dict[tuple[str, Term], Curve] = {}
        self._assets: dict[str, AssetIndex] = self._group(lots)

    @property
    def tax(self) -> TaxRules:
        return self.rules.tax

    @property
    def acquisitions(self) -> AcquisitionLog:
        """Acquisitions per (account, asset): the lots' own, then those executions report."""
        if self._acquisitions is None:
            self._acquisitions = AcquisitionLog(lots=self.columns)
        return self._acquisitions

    @acquisitions.setter
    def acquisitions(self, log: AcquisitionLog) -> None:
        self._acquisitions = log

    def _group(self, lots: pl.DataFrame) -> dict[str, AssetIndex]:
        qty = lots["quantity"].cast(pl.Float64).to_numpy()
        basis = lots["cost_basis_usd"].cast(pl.Float64).to_numpy()
        unit = basis / qty if lots.height else basis
        if self.tax.pack.basis == "pool" and lots.height:
            pooled = lots.select(
                (
                    pl.col("cost_basis_usd").cast(pl.Float64).sum().over("account", "asset")
                    / pl.col("quantity").cast(pl.Float64).sum().over("account", "asset")
                ).alias("unit")
            )
            unit = pooled["unit"].to_numpy()
        lt_day = _lt_days(self.columns.acquired_day, self.tax)
        account = self.columns.account.codes
        groups = (
            lots.select(pl.col("asset"))
            .with_row_index("row")
            .group_by("asset", maintain_order=True)
            .agg(pl.col("row"))
        )
        index: dict[str, AssetIndex] = {}
        for asset, rows_list in groups.iter_rows():
            rows = np.asarray(rows_list, dtype=np.int64)
            index[asset] = AssetIndex(rows, qty[rows], unit[rows], lt_day[rows], account[rows])
        return index

    @property
    def assets(self) -> list[str]:
        return list(self._assets)

    @property
    def lot_count(self) -> int:
        return self.frame.height

    def position(self, account: str) -> Position:
        """The year so far for `account` (default: the `[tax]` ytd settings)."""
        return self._positions.get(account, self.tax.start)

    def set_position(self, account: str, position: Position) -> None:
        """A new year-to-date position (the ledger realized something): triggers are rebuilt."""
        if self.position(account) == position:
            return
        self._positions[account] = position
        self._curves = {k: v for k, v in self._curves.items() if k[0] != account}
        for idx in self._assets.values():
            idx.next_change_day = -1  # rebuilt on the asset's next tick

    def curve(self, account: str, term: Term) -> Curve:
        """The float value curve of one more loss of `term` in `account` (cached)."""
        key = (account, term)
        found = self._curves.get(key)
        if found is None:
            exact = value_curve(self.tax, self.position(account), term)
            found = (
                np.asarray([float(x) for x in exact.starts]),
                np.asarray([float(x) for x in exact.values]),
                np.asarray([float(x) for x in exact.slopes]),
            )
            self._curves[key] = found
        return found

    def record_acquisition(self, acquisition: Acquisition) -> DoNotBuy | None:
        """Hook for executions (and imports): a buy of the asset; returns the do-not-buy
        entry it breaks, if any (monitor.alerts.render.acquisition_alerts makes the warning)."""
        self.acquisitions.add(acquisition)
        return self.do_not_buy.check(acquisition.account, acquisition.asset, acquisition.day)

    def record_harvest(
        self, account: str, asset: str, sold_on: date, loss: Decimal, quantity: Decimal
    ) -> DoNotBuy | None:
        """Hook for executions: a harvest sold `quantity` of `asset` on `sold_on` at `loss`;
        in a pack with a window the asset goes on the account's do-not-buy list."""
        return self.do_not_buy.add_harvest(account, asset, sold_on, loss, quantity)

    def wallet_rows(self, account: str, wallet: str, asset: str) -> I64:
        """Frame rows of every open lot of (account, wallet, asset)."""
        return self.columns.wallet_rows(account, wallet, asset)

    def account_rows(self, account: str, asset: str) -> I64:
        """Frame rows of every open lot of `asset` in `account`, all wallets."""
        return self.columns.account_rows(account, asset)

    def _triggers(self, idx: AssetIndex, day: int, rules: TriggerRules, *, deadline: bool) -> F64:
        long_term = idx.lt_day <= day
        if self.tax.value_model == "flat":
            rate = np.where(long_term, rules.long_term_rate, rules.short_term_rate)
            if deadline:
                rate = np.full(idx.qty.shape, rules.short_term_rate)
            return trigger_prices(idx.qty, idx.unit_basis, rate, rules)
        out = np.full(idx.qty.shape, -np.inf)
        terms: tuple[Term, ...] = ("short",) if deadline else ("short", "long")
        for code in np.unique(idx.account):
            in_account = idx.account == code
            for term in terms:
                mask = in_account
                if not deadline:
                    mask = in_account & (long_term if term == "long" else ~long_term)
                if mask.any():
                    curve = self.curve(self.accounts[int(code)], term)
                    out[mask] = curve_trigger_prices(
                        idx.qty[mask], idx.unit_basis[mask], curve, rules
                    )
        return out

    def _rebuild(self, idx: AssetIndex, day: int) -> None:
        """Recompute every trigger as of `day`; each lot keeps its arm state and cooldown."""
        rules = self.rules.on(day)
        trig = self._triggers(idx, day, rules, deadline=False)
        by = np.argsort(trig, kind="stable").astype(np.int64)
        armed = self.armed[idx.rows[by]]
        idx.order = np.concatenate([by[armed], by[~armed]])
        idx.triggers = trig[idx.order]
        idx.armed_end = int(armed.sum())
        horizon = self.rules.deadline_days
        upcoming = idx.lt_day[idx.lt_day > day]
        changes = [int(upcoming.min())] if upcoming.size else []
        if horizon and self._loses_value_at_long_term():
            near = np.flatnonzero((idx.lt_day > day) & (idx.lt_day <= day + horizon))
            zero = replace(rules, min_loss_usd=0.0, min_loss_pct=0.0, min_net_benefit_usd=0.0)
            dl = self._triggers(idx, day, zero, deadline=True)[near]
            by = np.argsort(dl, kind="stable")
            idx.dl_order, idx.dl_triggers, idx.dl_end = near[by], dl[by], len(near)
            entering = upcoming - horizon
            entering = entering[entering > day]
            if entering.size:
                changes.append(int(entering.min()))
        else:
            idx.dl_order, idx.dl_triggers, idx.dl_end = EMPTY, np.empty(0), 0
        step = self.rules.schedule.next_change(EPOCH + timedelta(days=day))
        if step is not None:
            changes.append(epoch_day(step))
        idx.day = day
        idx.next_change_day = min(changes) if changes else NO_DAY
        idx.remind_at = NEVER
        self._band(idx)
        self.rebuilds += 1

    @staticmethod
    def _band(idx: AssetIndex) -> None:
        """The prices that change nothing, after a build or a change of arm state.

        A price p fires nothing when p > every armed and deadline trigger, and re-arms
        nothing when p / (1 + rearm_pct) < the lowest disarmed trigger: exactly when the
        binary searches of `crossings` would find nothing. A NaN trigger (which those
        searches order last) makes the band empty, so every tick takes the full path.
        """
        end, dl_end = idx.armed_end, idx.dl_end
        highest = [float(idx.triggers[end - 1])] if end else []
        if dl_end:
            highest.append(float(idx.dl_triggers[dl_end - 1]))
        rearm = float(idx.triggers[end]) if end < len(idx.triggers) else math.inf
        nan = any(map(math.isnan, highest))
        idx.fire_above = math.inf if nan else max(highest, default=-math.inf)
        idx.rearm_from = -math.inf if math.isnan(rearm) else rearm

    def _loses_value_at_long_term(self) -> bool:
        tax = self.tax
        if not tax.has_holding_period:
            return False
        return tax.value_model == "ytd" or tax.flat_rate("long") < tax.flat_rate("short")

    def crossings(self, asset: str, price: float, ts_ms: int) -> Crossing | None:
        """Lots of `asset` that cross at `price` on a tick at `ts_ms`, updating arm state."""
        idx = self._assets.get(asset)
        if idx is None:
            return None
        day = ts_ms // 86_400_000
        if day < idx.day or day >= idx.next_change_day:
            self._rebuild(idx, day)
        rearm_price = price / self.rearm_factor
        quiet = price > idx.fire_above and rearm_price < idx.rearm_from
        if quiet and not (self.remind_ms and (ts_ms >= idx.remind_at or price <= idx.remind_below)):
            return None  # inside the quiet band: nothing fires, re-arms or is reminded
        fired, suppressed, deadline = EMPTY, 0, EMPTY
        if not quiet:
            fired, suppressed, deadline = self._cross(idx, price, rearm_price, ts_ms)
        reminded = self._reminders(idx, price, ts_ms) if self.remind_ms else EMPTY
        if fired.size == 0 and suppressed == 0 and deadline.size == 0 and reminded.size == 0:
            return None
        return Crossing(asset, fired, suppressed, deadline, reminded)

    def _cross(
        self, idx: AssetIndex, price: float, rearm_price: float, ts_ms: int
    ) -> tuple[I64, int, I64]:
        """Re-arm, then fire: (fired rows, crossed inside the cooldown, deadline rows)."""
        end = idx.armed_end
        rearm_to = end + int(idx.triggers[end:].searchsorted(rearm_price, side="right"))
        if rearm_to > end:
            self._rearm(idx, rearm_to)
        fire_from = int(idx.triggers[: idx.armed_end].searchsorted(price, side="left"))
        fired, suppressed = EMPTY, 0
        if fire_from < idx.armed_end:
            rows = idx.rows[idx.order[fire_from : idx.armed_end]]
            self._disarm(idx, fire_from, rows)
            due = self.last_alert_ms[rows] + self.cooldown_ms <= ts_ms
            fired = np.sort(rows[due])
            self.last_alert_ms[fired] = ts_ms
            suppressed = int(rows.size - fired.size)
        deadline = self._deadline_crossings(idx, price, fired)
        self._band(idx)
        return fired, suppressed, deadline

    def _reminders(self, idx: AssetIndex, price: float, ts_ms: int) -> I64:
        """Disarmed lots still under water (trigger >= price) whose last alert is at least
        `remind_after_s` old: reminded now (their last alert becomes now). Sets the gate
        that lets the next ticks skip this: the next due time among the lots under water,
        and the price at which another disarmed lot goes under water."""
        end = idx.armed_end
        under = end + int(idx.triggers[end:].searchsorted(price, side="left"))
        rows = idx.rows[idx.order[under:]]
        due_at = self.last_alert_ms[rows] + self.remind_ms
        reminded = np.sort(rows[due_at <= ts_ms])
        if reminded.size:
            self.last_alert_ms[reminded] = ts_ms
            self.unsaved(reminded)
            due_at = self.last_alert_ms[rows] + self.remind_ms
        idx.remind_at = int(due_at.min()) if due_at.size else NO_DUE
        idx.remind_below = float(idx.triggers[under - 1]) if under > end else -math.inf
        return reminded

    def _rearm(self, idx: AssetIndex, to: int) -> None:
        """The disarmed lots at order[armed_end:to] re-arm (the price climbed back)."""
        end = idx.armed_end
        rows = idx.rows[idx.order[end:to]]
        self.armed[rows] = True
        self._mark(rows)
        idx.remind_at = NEVER
        if end and not idx.triggers[end - 1] <= idx.triggers[end]:
            _merge(idx, 0, to)  # a rebuild left armed triggers above disarmed ones
        idx.armed_end = to

    def _disarm(self, idx: AssetIndex, start: int, rows: I64) -> None:
        """The armed lots at order[start:armed_end] (frame `rows`) disarm: they crossed."""
        end = idx.armed_end
        self.armed[rows] = False
        self._mark(rows)
        idx.remind_at = NEVER
        if end < len(idx.order) and not idx.triggers[end - 1] <= idx.triggers[end]:
            _merge(idx, start, len(idx.order))
        idx.armed_end = start

    def _deadline_crossings(self, idx: AssetIndex, price: float, fired: I64) -> I64:
        if idx.dl_end == 0:
            return EMPTY
        start = int(idx.dl_triggers.searchsorted(price, side="left"))
        if start >= idx.dl_end:
            return EMPTY
        rows = idx.rows[idx.dl_order[start : idx.dl_end]]
        idx.dl_end = start
        rows = rows[~self.deadline_sent[rows] & ~np.isin(rows, fired)]
        self.deadline_sent[rows] = True
        self.unsaved(rows)
        return np.sort(rows)

    def take_state(self) -> LotAlertState:
        """The alert state of every lot whose state changed since the last call (for the
        ledger, written with the alerts it goes with); forgets them as changed."""
        if not self.has_unsaved:
            return LotAlertState.empty()
        return self.state_of(np.unique(self._take_unsaved()))

    def _take_unsaved(self) -> I64:
        """The rows marked as changed (unsorted, perhaps repeated); clears the marks."""
        parts = self._unsaved
        if self._unsaved_mask is not None:
            parts = [*parts, np.flatnonzero(self._unsaved_mask).astype(np.int64)]
        self._unsaved, self._unsaved_count, self._unsaved_mask = [], 0, None
        return np.concatenate(parts) if parts else EMPTY

    def state_of(self, rows: I64) -> LotAlertState:
        """The alert state of `rows` (frame rows)."""
        index = pl.Series("row", rows, dtype=pl.Int64)
        lot_ids = self.frame.select(pl.col("lot_id").gather(index))["lot_id"].to_list()
        return LotAlertState(
            lot_ids, self.armed[rows], self.last_alert_ms[rows], self.deadline_sent[rows]
        )

    def unsaved(self, rows: I64) -> None:
        """Mark `rows` as changed (since the last `take_state`)."""
        if rows.size:
            self._mark(rows)

    def _mark(self, rows: I64) -> None:
        """`unsaved` on the hot path. With nobody taking the state (no ledger) the marks
        are folded into a mask over the book now and then (a constant cost per mark), so
        they never outgrow it."""
        self._unsaved.append(rows)
        self._unsaved_count += rows.size
        if self._unsaved_count > self._fold_at:
            if self._unsaved_mask is None:
                self._unsaved_mask = np.zeros(self.armed.size, dtype=np.bool_)
            self._unsaved_mask[np.concatenate(self._unsaved)] = True
            self._unsaved, self._unsaved_count = [], 0

    def rows_of(self, lot_ids: list[str]) -> I64:
        """Frame rows of `lot_ids` (those in the book), ascending."""
        found = (
            self.frame.select("lot_id")
            .with_row_index("row")
            .join(
                pl.DataFrame({"lot_id": lot_ids}, schema={"lot_id": pl.String()}),
                on="lot_id",
                how="semi",
            )
        )
        return np.sort(found["row"].cast(pl.Int64).to_numpy())

    @property
    def has_unsaved(self) -> bool:
        return bool(self._unsaved) or self._unsaved_mask is not None

    def restore(self, state: pl.DataFrame) -> int:
        """Put back the alert state the ledger kept (columns lot_id, armed, last_alert_ms,
        deadline_sent; lots not in the book are ignored); returns how many lots it set.

        Vectorized (a join on lot_id), so a restart of a million lots stays fast. Indexes
        already built are rebuilt on their next tick.
        """
        if state.height == 0 or self.frame.height == 0:
            return 0
        found = (
            self.frame.select("lot_id").with_row_index("row").join(state, on="lot_id", how="inner")
        )
        rows = found["row"].cast(pl.Int64).to_numpy()
        self.armed[rows] = found["armed"].cast(pl.Boolean).to_numpy()
        self.last_alert_ms[rows] = found["last_alert_ms"].fill_null(NEVER).cast(pl.Int64).to_numpy()
        self.deadline_sent[rows] = found["deadline_sent"].cast(pl.Boolean).to_numpy()
        for idx in self._assets.values():
            idx.next_change_day = -1
        return len(rows)

    def carry_state(self, old: LotBook) -> None:
        """Each lot's alert state from `old` (a book over the lots before a fill), by
        lot_id; lots whose state `old` had not handed over stay marked as changed."""
        pairs = (
            self.frame.select("lot_id")
            .with_row_index("new")
            .join(old.frame.select("lot_id").with_row_index("old"), on="lot_id", how="inner")
        )
        new = pairs["new"].cast(pl.Int64).to_numpy()
        was = pairs["old"].cast(pl.Int64).to_numpy()
        self.armed[new] = old.armed[was]
        self.last_alert_ms[new] = old.last_alert_ms[was]
        self.deadline_sent[new] = old.deadline_sent[was]
        if old.has_unsaved:
            pending = np.zeros(old.lot_count, dtype=np.bool_)
            pending[old._take_unsaved()] = True
            self.unsaved(new[pending[was]])
        for idx in self._assets.values():
            idx.next_change_day = -1

    def trigger_of(self, asset: str) -> tuple[I64, F64]:
        """Frame rows and current triggers of an asset's lots (armed, then disarmed; each
        run sorted by trigger)."""
        idx = self._assets[asset]
        return idx.rows[idx.order], idx.triggers

    def lot_triggers(self, ts_ms: int) -> pl.DataFrame:
        """Each open lot's trigger price as of `ts_ms` (for `harvest-monitor lots`).

        Columns lot_id, account, wallet, asset, trigger_usd (null: the lot never
        triggers). Leaves the arm state of the index alone.
        """
        day = ts_ms // 86_400_000
        out = np.full(self.frame.height, np.nan)
        for idx in self._assets.values():
            out[idx.rows] = self._triggers(idx, day, self.rules.on(day), deadline=False)
        out[~(out > 0)] = np.nan
        return self.frame.select("lot_id", "account", "wallet", "asset").with_columns(
            pl.Series("trigger_usd", out, dtype=pl.Float64).fill_nan(None)
        )

    def lots_at(self, rows: I64) -> pl.DataFrame:
        """The lot rows (exact Decimal columns) for building an alert."""
        return self.frame.select(pl.all().gather(rows))


def book_rules(settings: Settings, tax: TaxRules | None = None) -> BookRules:
    """The index's rules from `[tax]` (via its rule pack) and `[harvest]`."""
    h = settings.harvest
    tax = tax or tax_rules(settings.tax)
    thresholds = TriggerRules(
        min_loss_usd=h.min_loss_usd,
        min_loss_pct=h.min_loss_pct,
        min_net_benefit_usd=h.min_net_benefit_usd,
        cost_rate=h.cost_rate,
        short_term_rate=float(tax.flat_rate("short")),
        long_term_rate=float(tax.flat_rate("long")),
    )
    schedule = Schedule.parse(
        [(s.starts, s.min_loss_usd, s.min_loss_pct, s.min_net_benefit_usd) for s in h.schedule]
    )
    return BookRules(thresholds, tax, schedule, h.deadline_days)


def build_book(settings: Settings, lots: pl.DataFrame, tax: TaxRules | None = None) -> LotBook:
    """The lot book over `lots` with the configured rules."""
    return LotBook(
        lots,
        book_rules(settings, tax),
        rearm_pct=settings.harvest.rearm_pct,
        cooldown_s=settings.harvest.cooldown_s,
        remind_after_s=settings.harvest.remind_after_s,
    )


def default_book_rules(thresholds: TriggerRules) -> BookRules:
    """The skeleton's rules: the us pack, flat value, no schedule, no deadlines."""
    tax = tax_rules(TaxSettings())
    tax = replace(
        tax,
        short_rate=exact(thresholds.short_term_rate),
        long_rate=exact(thresholds.long_term_rate),
    )
    return BookRules(thresholds=thresholds, tax=tax)


def _merge(idx: AssetIndex, start: int, stop: int) -> None:
    """Sort order[start:stop] by trigger again: two sorted runs, so one linear merge
    (numpy's stable sort is a timsort for floats)."""
    by = np.argsort(idx.triggers[start:stop], kind="stable")
    idx.order[start:stop] = idx.order[start:stop][by]
    idx.triggers[start:stop] = idx.triggers[start:stop][by]


def _lt_days(acquired: I32, tax: TaxRules) -> I32:
    """Long-term-from epoch day per lot, from its acquisition epoch day (once per distinct day)."""
    days, at = np.unique(acquired, return_inverse=True)
    firsts = [tax.long_term_from(EPOCH + timedelta(days=int(d))) for d in days]
    lt = [NO_DAY if first is None else epoch_day(first) for first in firsts]
    return np.asarray(lt, dtype=np.int32)[at].reshape(-1)
