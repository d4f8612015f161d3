"""Sending an order and knowing its outcome, whatever happens on the way.

The order row is written before the order is sent. An answer that does not come (network
error, timeout, crash) is resolved by asking the venue for the client order id: found,
it is followed to its end; not found, it is sent again under the same client id, which
the venue would refuse as a duplicate had the first one arrived after all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal

from monitor.execute import metrics
from monitor.execute.guardrails import Guardrails
from monitor.execute.idempotency import client_order_id
from monitor.execute.venue import (
    Reference,
    Side,
    Venue,
    VenueOrder,
    VenueRejected,
    VenueUnavailable,
)
from monitor.ledger import Ledger
from monitor.ledger.intents import Intent, Leg
from monitor.settings import ExecutionSettings

log = logging.getLogger(__name__)

LOOKUPS = 3  # fetch/resend rounds for an order whose outcome is unknown


class Pending(Exception):
    """An order's outcome is still unknown: the intent stays submitted, retried later."""


def side_of(leg: Leg) -> Side:
    return "sell" if leg == "sell" else "buy"


class OrderDesk:
    """Sends, finds and settles the orders of intents; every order passes the guardrails."""

    def __init__(
        self, settings: ExecutionSettings, ledger: Ledger, venue: Venue, guard: Guardrails
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.venue = venue
        self.guard = guard

    def halted(self) -> str:
        """The kill switch, checked before every order ('' when trading may go on)."""
        reason = self.guard.kill_switch()
        metrics.KILL_SWITCH.set(1 if reason else 0)
        return reason

    async def send(
        self, intent: Intent, leg: Leg, symbol: str, amount: Decimal, ref: Reference
    ) -> VenueOrder | None:
        """Write the order, send it, and wait until it is final; None if it was not sent
        (dry run) or was refused (the intent is then ended with the reason)."""
        cid = client_order_id(intent.alert_id, leg)
        side = side_of(leg)
        s = self.settings
        if s.mode == "live" and s.dry_run:
            log.warning(
                "dry run: order not sent",
                extra={
                    "intent_id": intent.intent_id,
                    "venue": s.venue,
                    "symbol": symbol,
                    "side": side,
                    "type": "market",
                    "amount": format(amount, "f"),
                    "client_order_id": cid,
                },
            )
            metrics.ORDERS.labels(leg, "dry_run").inc()
            self.ledger.intents.end(
                intent.intent_id, "cancelled", f"dry run: market {side} {amount} {symbol} logged"
            )
            return None
        self.ledger.intents.begin_order(intent, leg, cid, side, amount)
        try:
            order = await self.venue.create_market_order(symbol, side, amount, cid, ref)
        except VenueRejected as exc:
            metrics.ORDERS.labels(leg, "rejected").inc()
            metrics.ERRORS.labels("rejected").inc()
            self.ledger.intents.mark_order(cid, "rejected", str(exc))
            self.ledger.intents.end(intent.intent_id, "failed", f"{leg} rejected: {exc}")
            return None
        except VenueUnavailable as exc:
            metrics.ERRORS.labels("venue_unavailable").inc()
            log.warning(
                "order outcome unknown",
                extra={"intent_id": intent.intent_id, "client_order_id": cid, "error": str(exc)},
            )
            order = await self.lookup(leg, symbol, amount, cid, ref, s.recovery_grace_s)
        return await self.settle(symbol, order)

    async def reconcile(self, intent: Intent, leg: Leg, ref: Reference) -> VenueOrder | None:
        """The final state of an order written before a crash; None if there is no row."""
        row = self.ledger.intents.order(intent.intent_id, leg)
        if row is None:
            return None
        try:
            found = await self.venue.fetch_order(row.symbol, row.client_order_id)
        except VenueUnavailable as exc:
            raise Pending(str(exc)) from None
        if found is None:
            log.warning(
                "order never reached the venue, sending it again",
                extra={"intent_id": intent.intent_id, "client_order_id": row.client_order_id},
            )
            found = await self.lookup(leg, row.symbol, row.amount, row.client_order_id, ref, 0.0)
        else:
            metrics.ORDERS.labels(leg, "recovered").inc()
        return await self.settle(row.symbol, found)

    async def lookup(
        self,
        leg: Leg,
        symbol: str,
        amount: Decimal,
        cid: str,
        ref: Reference,
        first_wait_s: float | None = None,
    ) -> VenueOrder:
        """Find out whether an order exists; send it again (same client id) if it does not."""
        last = "no answer"
        for attempt in range(LOOKUPS):
            wait = self.settings.poll_interval_s
            if attempt == 0 and first_wait_s is not None:
                wait = first_wait_s
            await asyncio.sleep(wait)
            try:
                found = await self.venue.fetch_order(symbol, cid)
                if found is not None:
                    metrics.ORDERS.labels(leg, "recovered").inc()
                    return found
                halted = self.halted()
                if halted:
                    raise Pending(f"{cid} is not at the venue and stays unsent: {halted}")
                metrics.ORDERS.labels(leg, "resent").inc()
                return await self.venue.create_market_order(symbol, side_of(leg), amount, cid, ref)
            except VenueUnavailable as exc:
                metrics.ERRORS.labels("venue_unavailable").inc()
                last = str(exc)
            except VenueRejected as exc:  # e.g. a duplicate client id: it exists after all
                last = str(exc)
        raise Pending(f"{cid}: {last}")

    async def settle(self, symbol: str, order: VenueOrder) -> VenueOrder:
        """Poll an open order until it is final; cancel what is left after the timeout."""
        s = self.settings
        deadline = time.monotonic() + s.order_timeout_s
        while not order.final:
            if time.monotonic() >= deadline:
                try:
                    await self.venue.cancel_order(symbol, order.client_order_id)
                except VenueUnavailable as exc:
                    raise Pending(str(exc)) from None
                deadline = time.monotonic() + s.order_timeout_s
            await asyncio.sleep(s.poll_interval_s)
            try:
                found = await self.venue.fetch_order(symbol, order.client_order_id)
            except VenueUnavailable as exc:
                raise Pending(str(exc)) from None
            if found is None:
                raise Pending(f"{order.client_order_id} vanished at the venue")
            order = found
        return order
