"""The executor: alerts from the ledger -> intents -> orders -> fills -> lot changes.

It reads alerts from the ledger's alerts table in order (a durable cursor), so an alert
recorded just before a crash is still acted on after it, and it runs beside detection
as its own task: detection only records alerts and wakes it.

Crash safety, in order: the intent (its lots reserved) is committed before any order;
the order row before the order is sent; a fill with every lot change it causes in one
transaction. At start, `recover()` asks the venue, by client order id, about every
order that may be in flight, before anything new is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from monitor.alerts.schema import Alert, decode_alert
from monitor.execute import metrics
from monitor.execute.fills import FillRecorder, Listener
from monitor.execute.guardrails import Guardrails, min_venues
from monitor.execute.idempotency import intent_id
from monitor.execute.intake import build_intent, parse_time, screen
from monitor.execute.orders import OrderDesk, Pending
from monitor.execute.venue import MarketRules, Reference, Venue, VenueRejected, VenueUnavailable
from monitor.ledger import Ledger
from monitor.ledger.intents import ACTIVE, Intent, Leg, rebuy_symbol
from monitor.settings import Settings
from streams.feeds.backoff import Backoff

log = logging.getLogger(__name__)

CURSOR = "executor"
PAGE = 200
RETRY_MAX_S = 60.0  # the longest wait between attempts to reach an unreachable venue


@dataclass
class ExecutorHealth:
    """Whether the executor can trade now (for /healthz and the status line).

    `venue_up` is False until the venue has answered once; while it is False, alerts are
    still recorded and delivered, and the executor retries the venue with backoff.
    """

    venue_up: bool = False
    reason: str = "not started"
    attempts: int = 0  # failed attempts to reach the venue since it last answered

    def venue_down(self, reason: str) -> None:
        self.venue_up, self.reason = False, reason
        self.attempts += 1

    def venue_up_now(self) -> None:
        self.venue_up, self.reason, self.attempts = True, "", 0


class Executor:
    """Runs harvest intents in paper or live mode; `run()` is its supervised task."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        venue: Venue,
        *,
        guardrails: Guardrails | None = None,
        clock: Callable[[], datetime] | None = None,
        price_of: Callable[[str], Decimal | None] | None = None,
        listeners: Sequence[Listener] = (),
        event_time: bool = False,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.venue = venue
        self.desk = OrderDesk(
            settings.execution, ledger, venue, guardrails or Guardrails(settings.execution)
        )
        self.recorder = FillRecorder(ledger, settings.execution.quote_usd, listeners)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._price_of = price_of  # USD price of an asset now (delayed or replacement rebuys)
        self._wake = asyncio.Event()
        self.health = ExecutorHealth()
        self._quote_usd = settings.execution.quote_usd
        # Replay: an alert's age is judged against the newest alert's time (the stream's
        # own clock), never the wall clock, which would find every replayed alert stale.
        self._event_time = event_time
        self._event_now: datetime | None = None
        self._min_venues = min_venues(settings)

    @property
    def listeners(self) -> list[Listener]:
        return self.recorder.listeners

    async def start(self) -> None:
        """Connect to the venue. An unreachable venue is not fatal: `health` says so and
        `run` retries it with backoff, while detection and alerting go on."""
        await self.connect()

    async def connect(self) -> bool:
        """One attempt to start the venue; True when it answers."""
        try:
            await self.venue.start()
        except VenueUnavailable as exc:
            self.health.venue_down(str(exc))
            metrics.VENUE_UP.set(0)
            metrics.ERRORS.labels("venue_unavailable").inc()
            log.warning(
                "execution venue unreachable, orders wait (attempt %d): %s",
                self.health.attempts,
                exc,
                extra={
                    "venue": self.venue.name,
                    "error": str(exc),
                    "attempts": self.health.attempts,
                },
            )
            return False
        if self.health.attempts:
            log.info(
                "execution venue reachable again",
                extra={"venue": self.venue.name, "attempts": self.health.attempts},
            )
        self.health.venue_up_now()
        metrics.VENUE_UP.set(1)
        return True

    async def stop(self) -> None:
        await self.venue.stop()

    def wake(self) -> None:
        """New alerts are in the ledger."""
        self._wake.set()

    async def run(self) -> None:
        """Reach the venue (retrying with backoff), recover, then follow the alerts table
        until cancelled."""
        backoff = Backoff(initial_s=1.0, max_s=RETRY_MAX_S)
        while not self.health.venue_up:
            await asyncio.sleep(backoff.next_delay())
            await self.connect()
        await self.recover()
        while True:
            self._wake.clear()
            await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.execution.poll_interval_s)

    async def recover(self) -> None:
        """Settle every active intent with the venue before anything new is sent."""
        self.desk.halted()  # the kill switch gauge, from the start
        alerts = self.ledger.alerts
        if alerts.cursor(CURSOR) is None:  # first run on this ledger: history is not traded
            alerts.set_cursor(CURSOR, alerts.last_seq())
        active = self.ledger.intents.in_states(ACTIVE)
        if any(i.state in ("sell_submitted", "rebuy_submitted") for i in active):
            await asyncio.sleep(self.settings.execution.recovery_grace_s)
        for intent in active:
            log.info("recovering", extra={"intent_id": intent.intent_id, "state": intent.state})
            await self.advance(intent)
        self._gauge()

    async def drain(self) -> None:
        """Act on every alert after the cursor, then on intents still under way."""
        alerts = self.ledger.alerts
        while True:
            page = alerts.alerts_after_seq(alerts.cursor(CURSOR) or 0, PAGE)
            for stored in page:
                try:
                    alert = decode_alert(stored.body)
                except msgspec.DecodeError as exc:
                    metrics.ERRORS.labels("bad_alert").inc()
                    log.error(
                        "stored alert unreadable, not traded",
                        extra={"alert_id": stored.alert_id, "error": str(exc)},
                    )
                else:
                    await self.handle(alert)
                alerts.set_cursor(CURSOR, stored.seq)
            if len(page) < PAGE:
                break
        for intent in self.ledger.intents.in_states(ACTIVE):
            await self.advance(intent)
        self._gauge()

    async def handle(self, alert: Alert) -> Intent | None:
        """One alert: its intent (existing or new), carried as far as it can go now."""
        if self._event_time:  # replay: time is the stream's, as far as it has come
            tick = parse_time(alert.tick_ts)
            self._event_now = max(tick, self._event_now or tick)
        skip = screen(alert, self.settings, long_term_exempt=self.ledger.tax.pack.long_term_exempt)
        if skip is not None:
            log.debug("not traded", extra={"alert_id": alert.alert_id, "reason": skip.reason})
            return None
        existing = self.ledger.intents.get(intent_id(alert.alert_id))
        if existing is None:
            existing = await self._plan(alert)
        await self.advance(existing)
        return self.ledger.intents.get(existing.intent_id)

    async def _plan(self, alert: Alert) -> Intent:
        """Write the intent (lots reserved) or a cancelled one with the reason."""
        refusal = ""
        rules = MarketRules("", Decimal(0))
        try:
            rules = await self.venue.market(f"{alert.asset}/{self.settings.execution.quote}")
        except (VenueRejected, VenueUnavailable) as exc:
            refusal = str(exc)
        candidate, reason = build_intent(alert, self.settings, rules, self._open(alert))
        notional = candidate.quantity * candidate.price
        guard = self.desk.guard
        checks = (  # the first that refuses names the reason
            ("market", refusal),
            ("plan", reason),
            ("stale_alert", self._stale(alert)),
            ("min_venues", guard.price_support(alert.venues, alert.confirmed_by, self._min_venues)),
            ("harvest_limit", guard.harvest_limit(notional)),
        )
        tag, reason = next(((t, r) for t, r in checks if r), ("", ""))
        intent, _ = self.ledger.intents.plan(candidate, at=self._now())
        if intent.state == "planned" and reason:
            self.ledger.intents.end(intent.intent_id, "cancelled", reason)
            metrics.REFUSED.labels(tag).inc()
        if reason or intent.state == "cancelled":
            log.warning(
                "harvest not executed",
                extra={"alert_id": alert.alert_id, "reason": reason or intent.reason},
            )
        found = self.ledger.intents.get(intent.intent_id)
        return found if found is not None else intent

    async def advance(self, intent: Intent) -> None:
        """Take an intent through as many states as it can go now; errors are contained."""
        try:
            while True:
                state = intent.state
                if state == "planned":
                    await self._sell(intent)
                elif state in ("sell_submitted", "rebuy_submitted"):
                    await self._reconcile(intent)
                elif state in ("sell_filled", "sell_partially_filled"):
                    await self._rebuy(intent)
                after = self.ledger.intents.get(intent.intent_id)
                if after is None or after.state == state:
                    return
                intent = after
        except Pending as exc:
            log.warning(
                "order outcome unknown, will ask again",
                extra={"intent_id": intent.intent_id, "error": str(exc)},
            )
        except Exception as exc:  # one intent's trouble must not stop the others
            metrics.ERRORS.labels("internal").inc()
            log.exception(
                "executor error", extra={"intent_id": intent.intent_id, "error": str(exc)}
            )

    async def _sell(self, intent: Intent) -> None:
        halted = self.desk.halted()
        if halted:
            self._cancel(intent, halted, "kill_switch")
            return
        now = self._now()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        sold_today = self.ledger.intents.sell_notional_since(day, by_fill_time=self._event_time)
        over = self.desk.guard.daily_limit(intent.quantity * intent.price, sold_today, day)
        if over:
            self._cancel(intent, over, "daily_limit")
            return
        # The venue's own price now: a sale far from the alert's price is not sent (a bad
        # print that reached an alert, a market that moved since, a wrong quote rate).
        current = await self.venue.price(intent.symbol)
        current_usd = current * self._quote_usd if current is not None else None
        off = self.desk.guard.slippage(self.venue.name, current_usd, intent.price)
        if off:
            self._cancel(intent, off, "slippage" if current_usd is not None else "no_price")
            return
        order = await self.desk.send(
            intent, "sell", intent.symbol, intent.quantity, self._ref(intent)
        )
        if order is not None:
            self.recorder.sell(intent, order)

    async def _reconcile(self, intent: Intent) -> None:
        leg: Leg = "sell" if intent.state == "sell_submitted" else "rebuy"
        order = await self.desk.reconcile(intent, leg, self._ref(intent))
        if order is None:  # a state change without its order row cannot be committed
            self.ledger.intents.end(intent.intent_id, "failed", f"{leg}: no order row")
        elif leg == "sell":
            self.recorder.sell(intent, order)
        else:
            self.recorder.rebuy(intent, order)

    async def _rebuy(self, intent: Intent) -> None:
        if self._now() < intent.rebuy_after or self.desk.halted():
            return  # not yet, or trading is halted: the sale is recorded, the rebuy waits
        if self._now() < self._windows_end(intent.account, intent.rebuy_asset):
            return  # a later sale of the asset has a window still open: buying now hurts it
        ref = self._rebuy_reference(intent)
        if ref is None:
            return  # no price for the rebuy asset yet
        symbol = rebuy_symbol(intent)
        try:
            rules = await self.venue.market(symbol)
        except VenueRejected as exc:
            self.ledger.intents.end(intent.intent_id, "failed", f"rebuy: {exc}")
            return
        sold = self.ledger.intents.sold_quantity(intent.intent_id)
        if intent.rebuy_asset == intent.asset:
            amount = rules.round_amount(sold)
        else:  # a replacement: about the same USD exposure
            amount = rules.round_amount(sold * intent.price / self._quote_usd / ref.price)
        refusal = rules.refusal(amount, ref.price)
        if refusal:
            self.ledger.intents.end(intent.intent_id, "failed", f"rebuy: {refusal}")
            return
        order = await self.desk.send(intent, "rebuy", symbol, amount, ref)
        if order is not None:
            self.recorder.rebuy(intent, order)

    async def at_event_time(self, ts_ms: int) -> None:
        """Replay: the stream has reached `ts_ms`; carry on the intents now due (rebuys)."""
        when = datetime.fromtimestamp(ts_ms / 1000, UTC)
        self._event_now = max(when, self._event_now or when)
        for intent in self.ledger.intents.in_states(ACTIVE):
            await self.advance(intent)

    def _now(self) -> datetime:
        """Now: the clock, or in replay the newest alert's tick time (event time), so fills,
        rebuys and intents carry the stream's time and never run past its last tick."""
        if self._event_time and self._event_now is not None:
            return self._event_now
        return self._clock()

    def _windows_end(self, account: str, asset: str) -> datetime:
        """When every window the pack opens after the account's harvests of `asset` has
        closed (the first day a buy re-costs none of them): not just the rebuy's own sale's."""
        last = self.ledger.last_harvest_day(account, asset)
        if last is None:
            return datetime.min.replace(tzinfo=UTC)
        first = self.ledger.tax.first_rebuy_day(last)
        return datetime(first.year, first.month, first.day, tzinfo=UTC)

    def _cancel(self, intent: Intent, reason: str, tag: str) -> None:
        self.ledger.intents.end(intent.intent_id, "cancelled", reason)
        metrics.REFUSED.labels(tag).inc()
        log.warning(
            "harvest not executed",
            extra={"alert_id": intent.alert_id, "intent_id": intent.intent_id, "reason": reason},
        )

    def _ref(self, intent: Intent) -> Reference:
        """The alert's price and tick time: what a paper sell fills at."""
        return Reference(intent.price / self._quote_usd, self._alert_time(intent) or self._now())

    def _rebuy_reference(self, intent: Intent) -> Reference | None:
        sale = self._alert_time(intent) or self._now()
        if intent.rebuy_asset == intent.asset and intent.rebuy_after <= sale:
            return Reference(intent.price / self._quote_usd, sale)  # same tick, same price
        usd = self._price_of(intent.rebuy_asset) if self._price_of is not None else None
        if usd is not None:
            return Reference(usd / self._quote_usd, self._now())
        if self.settings.execution.mode == "live" and intent.rebuy_asset == intent.asset:
            return self._ref(intent)  # a live market order needs no price; limits use this
        return None

    def _alert_time(self, intent: Intent) -> datetime | None:
        stored = self.ledger.alerts.alert(intent.alert_id)
        return parse_time(decode_alert(stored.body).tick_ts) if stored is not None else None

    def _stale(self, alert: Alert) -> str:
        """Why the alert is too old to trade ('' when it is not): its age against the
        wall clock, or in event time (replay) against the newest alert seen so far."""
        limit = self.settings.execution.max_alert_age_s
        if not limit:
            return ""
        emitted = parse_time(alert.emitted_at)
        now = self._clock()
        if self._event_time:
            now = self._event_now = max(emitted, self._event_now or emitted)
        age = (now - emitted).total_seconds()
        return f"alert is {age:.0f}s old (max_alert_age_s {limit:g})" if age > limit else ""

    def _open(self, alert: Alert) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for lot_id in alert.lot_ids:
            lot = self.ledger.lot(lot_id)
            if lot is not None and lot["status"] == "open":
                quantity = lot["open_quantity"]
                out[lot_id] = quantity if isinstance(quantity, Decimal) else Decimal(0)
        return out

    def _gauge(self) -> None:
        for state, n in self.ledger.intents.counts().items():
            metrics.INTENTS.labels(state).set(n)
