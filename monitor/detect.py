"""Detection: a tick in, the harvest alerts it causes out.

Price -> trigger index crossing (with re-arm hysteresis and cooldown in the book) ->
one proposal per (account, wallet) -> `hm.alert/1`. Pure and synchronous: the caller
owns I/O, so replay and the daemon run the same code.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import polars as pl

from monitor import metrics
from monitor.alerts.render import to_alert, wall_clock_iso
from monitor.alerts.schema import Alert
from monitor.book import LotBook, build_book
from monitor.exposure import Exposure
from monitor.lot_columns import LotAlertState
from monitor.plan import Planner, propose
from monitor.prices import AssetPrice, PriceBoard
from monitor.settings import Settings
from monitor.triggers import TriggerRules
from streams.ticks import Tick, format_ts_ms


def trigger_rules(settings: Settings) -> TriggerRules:
    """The trigger thresholds from `[tax]` and `[harvest]`."""
    h = settings.harvest
    return TriggerRules(
        min_loss_usd=h.min_loss_usd,
        min_loss_pct=h.min_loss_pct,
        min_net_benefit_usd=h.min_net_benefit_usd,
        cost_rate=h.cost_rate,
        short_term_rate=settings.tax.short_term_rate,
        long_term_rate=settings.tax.long_term_rate,
    )


def value_rules(settings: Settings) -> Planner:
    """The harvest planner (exact valuation, rule pack, plan settings) from `[tax]`/`[harvest]`."""
    return Planner.from_settings(settings)


class Detector:
    """Runs each tick through prices and the lot book; returns the alerts to emit.

    `event_time=True` (replay) stamps `emitted_at` with the tick's own time, so the same
    input gives byte-identical output; otherwise it is the wall clock.
    """

    def __init__(
        self, book: LotBook, prices: PriceBoard, values: Planner, *, event_time: bool = False
    ) -> None:
        self.book = book
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
        return self.book.restore(state)

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
            )
            for p in propose(self.book, crossing, priced.usd, tick.ts_ms, self.values)
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

    def _clock(self, tick: Tick) -> Callable[[], str]:
        if self.event_time:
            stamp = format_ts_ms(tick.ts_ms)
            return lambda: stamp
        return wall_clock_iso


def build_detector(settings: Settings, lots: pl.DataFrame, *, event_time: bool = False) -> Detector:
    """The detection stage over `lots` with the configured rules."""
    planner = value_rules(settings)
    book = build_book(settings, lots, planner.tax)
    prices = PriceBoard(settings.prices.rules())
    return Detector(book, prices, planner, event_time=event_time)
