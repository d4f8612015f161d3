"""Detection: a tick in, the harvest alerts it causes out.

Price -> trigger index crossing (with re-arm hysteresis and cooldown in the book) ->
one proposal per (account, wallet) -> `hm.alert/1`. Pure and synchronous: the caller
owns I/O, so replay and the daemon run the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import polars as pl

from monitor import heap, metrics
from monitor.alerts.render import to_alert, wall_clock_iso
from monitor.alerts.schema import Alert
from monitor.book import LotBook, build_book
from monitor.exposure import Exposure
from monitor.holdings import NEVER_MS, Holdings
from monitor.lot_columns import LotAlertState, LotColumns
from monitor.plan import Planner, propose
from monitor.prices import AssetPrice, PriceBoard
from monitor.settings import Settings
from monitor.tax.windows import AcquisitionLog
from streams.ticks import Tick, format_ts_ms

log = logging.getLogger(__name__)


def value_rules(settings: Settings) -> Planner:
    """The harvest planner (exact valuation, rule pack, plan settings) from `[tax]`/`[harvest]`."""
    return Planner.from_settings(settings)


class Detector:
    """Runs each tick through prices and the lot book; returns the alerts to emit.

    `event_time=True` (replay) stamps `emitted_at` with the tick's own time, so the same
    input gives byte-identical output; otherwise it is the wall clock.

    With `holdings` (and `build`, which makes a book from a lot frame) the book holds only
    the lots acquired by the latest tick's time; a tick past a pending lot's acquisition
    time brings it in (monitor/holdings.py).
    """

    def __init__(
        self,
        book: LotBook,
        prices: PriceBoard,
        values: Planner,
        *,
        event_time: bool = False,
        holdings: Holdings | None = None,
        build: Callable[[pl.DataFrame], LotBook] | None = None,
    ) -> None:
        self.book = book
        self.holdings = holdings if build is not None else None
        self._build = build
        self._admit_at = self.holdings.next_ms if self.holdings is not None else NEVER_MS
        self._restored: pl.DataFrame | None = None  # alert state for lots not held yet
        self._latest_ms = holdings.as_of_ms if holdings is not None else 0  # latest tick
        self.prices = prices
        self.values = values
        self.event_time = event_time
        self.alerts_emitted = 0
        self.ticks_seen = 0
        self._exposure = Exposure(book.frame)  # rebuild it when the book's lots change
        # Alerts raised outside a tick (an execution's rebuy inside a do-not-buy window):
        # they go out with the next tick's alerts, through the same sinks.
        self.pending: list[Alert] = []
        metrics.LOTS_OPEN.set(book.lot_count)

    @property
    def exposure(self) -> Exposure:
        return self._exposure

    @exposure.setter
    def exposure(self, exposure: Exposure) -> None:
        """A new exposure (the book's lots changed) starts from the last prices."""
        exposure.carry_prices(self._exposure)
        self._exposure = exposure

    def restore_state(self, state: pl.DataFrame) -> int:
        """Each lot's alert state as the ledger kept it (armed, last alert, deadline sent);
        returns how many open lots had one."""
        if self.holdings is not None and self.holdings.pending:
            self._restored = state  # for the lots that come in later
        return self.book.restore(state)

    def held(self, lots: pl.DataFrame) -> pl.DataFrame:
        """The lots of `lots` (the ledger's open lots after a fill) held at the latest tick's
        time: what a rebuilt book may hold. Lots acquired later wait for their time."""
        if self.holdings is None:
            return lots
        self.holdings = Holdings(lots, max(self.holdings.as_of_ms, self._latest_ms))
        self._admit_at = self.holdings.next_ms
        return self.holdings.held()

    def _admit(self, ts_ms: int) -> None:
        """Bring in the lots acquired by `ts_ms`: the book is rebuilt over the held lots,
        keeping every lot's alert state (and the restored state of those coming in)."""
        assert self.holdings is not None and self._build is not None
        newly = self.holdings.advance(ts_ms)
        self._admit_at = self.holdings.next_ms
        old = self.book
        new = self._build(self.holdings.held())
        carry_over(old, new)
        if self._restored is not None:
            new.restore(self._restored.filter(pl.col("lot_id").is_in(newly)))
        self.book = new
        self.exposure = Exposure(new.frame)
        heap.freeze_new()  # the new book is long-lived: out of the collector's walks
        metrics.LOTS_OPEN.set(new.lot_count)
        log.info(
            "lots acquired by now joined the book",
            extra={"lots": len(newly), "at": format_ts_ms(ts_ms), "pending": self.holdings.pending},
        )

    def take_state(self) -> LotAlertState:
        """The alert state of lots that changed since the last call (for the ledger)."""
        return self.book.take_state()

    def on_tick(self, tick: Tick) -> list[Alert]:
        """Alerts caused by one tick (usually none), after any pending ones."""
        if self.pending:
            pending, self.pending = self.pending, []
            return [*pending, *self._on_tick(tick)]
        return self._on_tick(tick)

    def queue(self, alerts: list[Alert]) -> None:
        """Emit `alerts` with the next tick's (counted as emitted now)."""
        for alert in alerts:
            metrics.ALERTS_EMITTED.labels(alert.kind).inc()
        self.alerts_emitted += len(alerts)
        self.pending.extend(alerts)

    def _on_tick(self, tick: Tick) -> list[Alert]:
        self.ticks_seen += 1
        if tick.ts_ms > self._latest_ms:
            self._latest_ms = tick.ts_ms
            if tick.ts_ms >= self._admit_at:
                self._admit(tick.ts_ms)
        priced = self.prices.update(tick)
        if not isinstance(priced, AssetPrice):
            metrics.TICKS_REJECTED.labels(priced).inc()
            return []
        self._exposure.update(priced.asset, priced.usd)
        if priced.confirmed is None:
            return []  # [prices] confirm_ms: no full window of prices behind this one yet
        rebuilds = self.book.rebuilds
        # The confirmed price: lots fire once the price has stayed under their trigger for
        # confirm_ms (the same as priced.usd when confirm_ms is 0).
        crossing = self.book.crossings(priced.asset, priced.confirmed, tick.ts_ms)
        if self.book.rebuilds != rebuilds:
            metrics.INDEX_REBUILDS.inc(self.book.rebuilds - rebuilds)
        if crossing is None:
            return []
        if crossing.suppressed:
            metrics.CROSSINGS_SUPPRESSED.inc(crossing.suppressed)
        if crossing.rows.size + crossing.deadline_rows.size + crossing.reminder_rows.size == 0:
            return []
        emitted_at = self._clock(tick)
        alerts = [
            msgspec.structs.replace(
                to_alert(
                    p,
                    venue=tick.venue,
                    symbol=tick.symbol,
                    tick_ts_ms=tick.ts_ms,
                    emitted_at=emitted_at,
                    planner=self.values,
                ),
                venues=priced.venues,
                consensus_age_ms=priced.age_ms,
                confirmed_by=priced.trust,
            )
            for p in propose(
                self.book, crossing, self._alert_price(priced, tick), tick.ts_ms, self.values
            )
        ]
        self.alerts_emitted += len(alerts)
        for alert in alerts:
            metrics.ALERTS_EMITTED.labels(alert.kind).inc()
            # de FIFO plans may sell older tax-free lots at a gain: loss_usd < 0 there.
            metrics.ALERTED_LOSS.labels(alert.asset).inc(max(0.0, float(alert.loss_usd)))
            metrics.ALERTED_TAX_SAVINGS.labels(alert.asset).inc(
                max(0.0, float(alert.tax_savings_usd))
            )
        return alerts

    def _alert_price(self, priced: AssetPrice, tick: Tick) -> float | Decimal:
        """The price an alert states and values with: this tick's own digits, exact, when the
        consensus is this tick's USD price itself (no conversion, no midpoint); else the
        consensus float (a computed value: there are no venue digits to keep)."""
        usd_quoted = tick.quote in self.prices.rates.usd_quotes
        if tick.price_exact and usd_quoted and priced.usd == tick.price:
            return tick.exact_price()
        return priced.usd

    def _clock(self, tick: Tick) -> Callable[[], str]:
        if self.event_time:
            stamp = format_ts_ms(tick.ts_ms)
            return lambda: stamp
        return wall_clock_iso


def build_detector(
    settings: Settings,
    lots: pl.DataFrame,
    *,
    event_time: bool = False,
    as_of_ms: int | None = None,
) -> Detector:
    """The detection stage over `lots` with the configured rules.

    The book starts with the lots acquired by `as_of_ms` (default: now; a replay passes
    its first tick's time); later ones join as the ticks reach their acquisition time.
    """
    planner = value_rules(settings)

    def build(frame: pl.DataFrame) -> LotBook:
        return build_book(settings, frame, planner.tax)

    if as_of_ms is None:
        as_of_ms = int(datetime.now(UTC).timestamp() * 1000)
    holdings = Holdings(lots, as_of_ms)
    book = build(holdings.held())
    if holdings.pending:  # the wash-sale windows know every acquisition, held yet or not
        book.acquisitions = AcquisitionLog(lots=LotColumns.of(lots))
    prices = PriceBoard(settings.prices.rules())
    return Detector(book, prices, planner, event_time=event_time, holdings=holdings, build=build)


def carry_over(old: LotBook, new: LotBook) -> None:
    """Per-lot alert state by lot_id (armed, cooldown, deadline sent: a rebuild re-arms no
    lot), and the book-wide tax state, from `old` to `new`."""
    new.carry_state(old)
    new.acquisitions = old.acquisitions
    new.do_not_buy = old.do_not_buy
    for account in old.accounts:
        new.set_position(account, old.position(account))
