"""Recording what an order did: the ledger transaction, metrics, and the book's update.

A venue order (quote currency, fees by currency) becomes a FillRecord in USD; the ledger
records it with every lot change in one transaction; listeners (the live lot book, the
tax engine's acquisitions) hear about it right after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from monitor.alerts.schema import decode_alert
from monitor.execute import metrics
from monitor.execute.idempotency import client_order_id
from monitor.execute.venue import VenueOrder
from monitor.ledger import Ledger
from monitor.ledger.intents import FillRecord, Intent
from monitor.tax.disposal import Disposal

log = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class BookChange:
    """What a fill did to the lots: parts sold (disposals) or a lot bought back."""

    intent_id: str
    account: str
    wallet: str
    asset: str
    disposals: tuple[Disposal, ...] = ()
    opened_lot_id: str = ""
    opened_quantity: Decimal = ZERO
    opened_cost_usd: Decimal = ZERO
    opened_at: datetime | None = None


Listener = Callable[[BookChange], None]


class FillRecorder:
    """Turns final venue orders into ledger records and book changes."""

    def __init__(self, ledger: Ledger, quote_usd: Decimal, listeners: Sequence[Listener]) -> None:
        self.ledger = ledger
        self.quote_usd = quote_usd
        self.listeners = list(listeners)

    def fill(self, order: VenueOrder, *, buy: bool) -> FillRecord:
        """The order in USD: average price, notional, fees (quote and base) and status."""
        q = self.quote_usd
        price = order.cost / order.filled if order.filled else ZERO
        if order.status == "closed":
            status = "filled"
        else:
            status = "partially_filled" if order.filled else order.status
        return FillRecord(
            venue_order_id=order.venue_order_id,
            status=status,
            quantity=order.filled,
            price=price * q,
            notional_usd=order.cost * q,
            fee_usd=(order.fee_quote + order.fee_base * price) * q,
            at=order.at,
            received_quantity=order.filled - order.fee_base if buy else None,
        )

    def sell(self, intent: Intent, order: VenueOrder) -> None:
        fill = self.fill(order, buy=False)
        disposals = self.ledger.intents.record_sell(
            intent, client_order_id(intent.alert_id, "sell"), fill
        )
        metrics.ORDERS.labels("sell", fill.status).inc()
        if not disposals:
            return
        loss = sum((d.cost_basis_usd - d.proceeds_usd for d in disposals), ZERO)
        metrics.HARVESTED_LOSS.inc(float(max(loss, ZERO)))
        metrics.TAX_SAVED.inc(float(max(ZERO, self._tax_saved(intent, fill.quantity))))
        log.info(
            "harvest sold",
            extra={
                "intent_id": intent.intent_id,
                "quantity": format(fill.quantity, "f"),
                "loss_usd": format(loss, "f"),
            },
        )
        self._notify(
            BookChange(
                intent.intent_id, intent.account, intent.wallet, intent.asset, tuple(disposals)
            )
        )

    def rebuy(self, intent: Intent, order: VenueOrder) -> None:
        fill = self.fill(order, buy=True)
        lot_id = self.ledger.intents.record_rebuy(
            intent, client_order_id(intent.alert_id, "rebuy"), fill
        )
        metrics.ORDERS.labels("rebuy", fill.status).inc()
        if not lot_id:
            return
        log.info("harvest rebought", extra={"intent_id": intent.intent_id, "lot_id": lot_id})
        self._notify(
            BookChange(
                intent.intent_id,
                intent.account,
                intent.wallet,
                intent.rebuy_asset,
                opened_lot_id=lot_id,
                opened_quantity=fill.received_quantity
                if fill.received_quantity is not None
                else fill.quantity,
                opened_cost_usd=fill.notional_usd + fill.fee_usd,
                opened_at=fill.at,
            )
        )

    def _tax_saved(self, intent: Intent, sold: Decimal) -> Decimal:
        """The alert's tax value, scaled to the quantity actually sold."""
        stored = self.ledger.alerts.alert(intent.alert_id)
        if stored is None or not intent.quantity:
            return ZERO
        return Decimal(decode_alert(stored.body).tax_savings_usd) * sold / intent.quantity

    def _notify(self, change: BookChange) -> None:
        for listener in self.listeners:
            try:
                listener(change)
            except Exception as exc:  # the ledger has the change; a listener only mirrors it
                metrics.ERRORS.labels("internal").inc()
                log.exception(
                    "book update failed", extra={"intent_id": change.intent_id, "error": str(exc)}
                )
