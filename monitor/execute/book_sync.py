"""Keeping the live lot book in step with fills, the moment they are recorded.

The ledger is the truth; the detector's LotBook is rebuilt from its open lots after a
fill (sold lots gone or smaller, a rebuy lot added), keeping what the old book knew that
the lots do not say: each surviving lot's alert state (armed or waiting to re-arm,
cooldown, deadline sent), the accounts'
year-to-date positions, the acquisitions log and the do-not-buy list. Then the tax
engine's hooks hear of the sale (`record_harvest`: the do-not-buy window) and of the
rebuy (`acquisition_alerts`: wash-sale / superficial-loss windows, and a `wash_warning` alert
when the rebuy lands inside a do-not-buy window). With the ytd value model the account's
year-to-date position takes the realized disposals, so the next loss is valued after them.

A rebuild is O(lots); harvests are rare next to ticks, so the index stays as it is
between them.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from monitor import metrics
from monitor.alerts.render import acquisition_alerts
from monitor.book import build_book
from monitor.detect import Detector, carry_over
from monitor.execute.fills import BookChange
from monitor.exposure import Exposure
from monitor.ledger import Ledger
from monitor.settings import Settings
from monitor.tax.windows import Acquisition
from streams.ticks import format_ts_ms

log = logging.getLogger(__name__)


class BookSync:
    """An executor listener: `apply(change)` updates the detector's book."""

    def __init__(self, settings: Settings, detector: Detector, ledger: Ledger) -> None:
        self.settings = settings
        self.detector = detector
        self.ledger = ledger

    def apply(self, change: BookChange) -> None:
        old = self.detector.book
        new = build_book(self.settings, self.detector.held(self.ledger.open_lots()), old.tax)
        carry_over(old, new)
        self.detector.book = new
        self.detector.exposure = Exposure(new.frame)
        metrics.LOTS_OPEN.set(new.lot_count)
        for sold_on, loss, quantity in _sales(change):
            new.record_harvest(change.account, change.asset, sold_on, loss, quantity)
        if change.disposals:  # ytd value model: the realized loss changes what the next is worth
            new.set_position(change.account, new.position(change.account).realize(change.disposals))
        if change.opened_lot_id and change.opened_at is not None:
            acquisition = Acquisition(
                account=change.account,
                asset=change.asset,
                day=change.opened_at.date(),
                quantity=change.opened_quantity,
                cost_usd=change.opened_cost_usd,
                lot_id=change.opened_lot_id,
                wallet=change.wallet,
            )
            ts_ms = int(change.opened_at.timestamp() * 1000)
            stamp = format_ts_ms(ts_ms)
            warnings = acquisition_alerts(
                new,
                self.detector.values,
                acquisition,
                ts_ms=ts_ms,
                emitted_at=lambda: stamp,
            )
            if warnings:
                log.warning(
                    "rebuy inside a do-not-buy window: wash_warning alert queued",
                    extra={"intent_id": change.intent_id, "asset": change.asset},
                )
                self.detector.queue(warnings)
        log.info(
            "lot book updated",
            extra={"intent_id": change.intent_id, "lots": new.lot_count},
        )


def _sales(change: BookChange) -> list[tuple[date, Decimal, Decimal]]:
    """(sold_on, loss, quantity) of a sale, summed over its disposals."""
    if not change.disposals:
        return []
    loss = sum((d.cost_basis_usd - d.proceeds_usd for d in change.disposals), Decimal(0))
    quantity = sum((d.quantity for d in change.disposals), Decimal(0))
    return [(change.disposals[0].sold_on, loss, quantity)]
