"""The investor's figures, as gauges for the investor's Grafana dashboard.

The ops dashboard shows the machine; this one shows the money: losses harvested this tax
year by term and the tax they are estimated to save (from the ledger's harvest
disposals, so a restart changes nothing), the do-not-buy list per asset, and how far
each asset's price may fall before its next lot is worth harvesting (from the book's
trigger index). Refreshed every `EVERY_S` by `stages.figures_stage`: the book's part on the
event loop, the ledger's in a thread.
Labels: `term` (short, long) and `asset` (the portfolio's), never an account or a lot.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal

import numpy as np
from prometheus_client import Gauge

from monitor.book import LotBook
from monitor.ledger import Ledger
from monitor.tax.disposal import Disposal
from monitor.tax.rules import TaxRules
from monitor.tax.summary import summarize
from monitor.tax.windows import DoNotBuyList

log = logging.getLogger(__name__)

EVERY_S = 15.0
TERMS = ("short", "long")

HARVESTED_LOSS_YTD = Gauge(
    "hm_harvested_loss_ytd_usd",
    "Losses realized by harvests in the current tax year (after disallowed parts), by "
    "holding term, from the ledger.",
    ["term"],
)
TAX_SAVED_YTD = Gauge(
    "hm_estimated_tax_saved_ytd_usd",
    "Estimated tax saved by the current tax year's harvests (`tax summary`: the year's "
    "tax without them minus with them, plus the value of the carryforward they add).",
)
DO_NOT_BUY_UNTIL = Gauge(
    "hm_do_not_buy_until_timestamp_seconds",
    "Per asset on a do-not-buy list today: the first day (UTC midnight) it may be bought "
    "back in every account that harvested it.",
    ["asset"],
)
DO_NOT_BUY_ASSETS = Gauge(
    "hm_do_not_buy_assets", "Assets on a do-not-buy list today (any account)."
)
TRIGGER_DISTANCE = Gauge(
    "hm_trigger_distance_ratio",
    "Per asset: (last price - the highest trigger under it) / last price: how far the "
    "price may fall before its next lot is worth harvesting.",
    ["asset"],
)


def harvested_by_term(disposals: Iterable[Disposal], first: date, last: date) -> dict[str, Decimal]:
    """Loss realized by harvests sold in [first, last], net of disallowed parts, by term."""
    out = {term: Decimal(0) for term in TERMS}
    for d in disposals:
        if d.harvest and first <= d.sold_on <= last:
            out[d.term] += max(Decimal(0), -d.rounded().reported_gain_usd)  # as tax summary
    return out


def refresh_year(ledger: Ledger, rules: TaxRules, today: date) -> None:
    """Harvested losses, tax saved and the do-not-buy list, from the ledger's disposals."""
    year = rules.tax_year(today)
    first, last = rules.tax_year_bounds(year)
    disposals: list[Disposal] = []
    for calendar_year in range(first.year - 1, last.year + 1):  # a window may start last year
        disposals.extend(ledger.disposals(calendar_year))
    for term, amount in harvested_by_term(disposals, first, last).items():
        HARVESTED_LOSS_YTD.labels(term).set(float(amount))
    TAX_SAVED_YTD.set(float(summarize(rules, disposals, year, rules.start).estimated_tax_saved))
    until: dict[str, date] = {}
    for entry in DoNotBuyList.from_disposals(rules, disposals).entries(today):
        until[entry.asset] = max(entry.until, until.get(entry.asset, entry.until))
    DO_NOT_BUY_ASSETS.set(len(until))
    DO_NOT_BUY_UNTIL.clear()  # an asset whose window ended leaves the list
    for asset, day in until.items():
        midnight = datetime.combine(day, time(), tzinfo=UTC)
        DO_NOT_BUY_UNTIL.labels(asset).set(midnight.timestamp())


def refresh_triggers(book: LotBook, prices: dict[str, float]) -> None:
    """Per asset with a price and a trigger under it: the distance to that trigger."""
    for asset, price in prices.items():
        if asset not in book.assets or price <= 0:
            continue
        _, triggers = book.trigger_of(asset)
        below = triggers[(triggers > 0) & (triggers < price)]
        if below.size:
            TRIGGER_DISTANCE.labels(asset).set((price - float(np.max(below))) / price)
        else:  # every lot of the asset is at or under its trigger, or none ever triggers
            with contextlib.suppress(KeyError):
                TRIGGER_DISTANCE.remove(asset)
