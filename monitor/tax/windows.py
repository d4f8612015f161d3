"""Windows around a sale: the do-not-buy-until list, and the acquisitions it is checked
against. What a window does to a loss (us wash sales when enabled, ca superficial losses,
uk bed and breakfast) is booked by `monitor.tax.matching`, for the plan and the ledger
alike.

After a harvest in a pack with a window or a waiting period, the asset goes on the
account's do-not-buy-until list; an acquisition inside it raises a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from monitor.tax.disposal import Disposal
from monitor.tax.rules import ZERO, TaxRules


@dataclass(frozen=True, slots=True)
class Acquisition:
    """`quantity` of `asset` bought in `account` on `day` for `cost_usd` (fees included)."""

    account: str
    asset: str
    day: date
    quantity: Decimal
    cost_usd: Decimal
    lot_id: str = ""
    wallet: str = ""


class AcquisitionSource(Protocol):
    """Acquisitions held column-wise elsewhere (the lot book's lots: lot_columns.py)."""

    def acquired_between(
        self, account: str, asset: str, first: date, last: date
    ) -> list[Acquisition]:
        """Those of (account, asset) from `first` to `last`, both included, by day, then
        in the source's own order."""
        ...


class AcquisitionLog:
    """Acquisitions per (account, asset): from the portfolio's lots and from executions.

    The lots' own come from `lots` (searched by day, no object per lot until asked for);
    those added (given, or reported by executions) come after them.
    """

    def __init__(
        self, acquisitions: Iterable[Acquisition] = (), lots: AcquisitionSource | None = None
    ) -> None:
        self._lots = lots
        self._by_key: dict[tuple[str, str], list[Acquisition]] = defaultdict(list)
        for acquisition in acquisitions:
            self.add(acquisition)

    def add(self, acquisition: Acquisition) -> None:
        """Record one acquisition (the executor's hook after a buy fills)."""
        self._by_key[(acquisition.account, acquisition.asset)].append(acquisition)

    def between(self, account: str, asset: str, first: date, last: date) -> list[Acquisition]:
        """Acquisitions of (account, asset) from `first` to `last`, both included, by day
        (then lot_id, then the lots' order, then the order they were added)."""
        found = []
        if self._lots is not None:
            found = self._lots.acquired_between(account, asset, first, last)
        found += [a for a in self._by_key.get((account, asset), ()) if first <= a.day <= last]
        return sorted(found, key=lambda a: (a.day, a.lot_id))


@dataclass(frozen=True, slots=True)
class Disallowance:
    """The part of a loss a window takes away, and the first sale day it would not."""

    amount: Decimal
    allowed_from: date | None
    reason: str  # "", wash_sale, superficial_loss


NONE = Disallowance(ZERO, None, "")


@dataclass(frozen=True, slots=True)
class DoNotBuy:
    """Do not buy `asset` in `account` before `until` (the harvest of `sold_on`)."""

    account: str
    asset: str
    sold_on: date
    until: date  # first day a purchase is fine
    loss_usd: Decimal  # the harvested loss a purchase inside the window puts at risk
    quantity: Decimal


class DoNotBuyList:
    """Per account: assets harvested in a pack with a window, and until when."""

    def __init__(self, rules: TaxRules) -> None:
        self.rules = rules
        self._entries: dict[tuple[str, str], DoNotBuy] = {}

    def add_harvest(
        self, account: str, asset: str, sold_on: date, loss: Decimal, quantity: Decimal
    ) -> DoNotBuy | None:
        """Record a harvest (loss > 0); returns the entry, or None when the pack has no window."""
        until = self.rules.first_rebuy_day(sold_on)
        if until <= sold_on or loss <= 0:
            return None
        key = (account, asset)
        old = self._entries.get(key)
        if old is not None and old.until >= until:
            entry = DoNotBuy(account, asset, old.sold_on, old.until, old.loss_usd + loss, quantity)
        else:
            entry = DoNotBuy(account, asset, sold_on, until, loss, quantity)
        self._entries[key] = entry
        return entry

    def check(self, account: str, asset: str, day: date) -> DoNotBuy | None:
        """The entry a purchase of `asset` in `account` on `day` falls inside, if any."""
        entry = self._entries.get((account, asset))
        if entry is None or not entry.sold_on <= day < entry.until:
            return None
        return entry

    def entries(self, on: date, account: str | None = None) -> list[DoNotBuy]:
        """The entries still running on `on`, by account then asset."""
        live = [
            e
            for e in self._entries.values()
            if e.sold_on <= on < e.until and (account is None or e.account == account)
        ]
        return sorted(live, key=lambda e: (e.account, e.asset))

    @classmethod
    def from_disposals(cls, rules: TaxRules, disposals: Iterable[Disposal]) -> DoNotBuyList:
        """The list as the ledger's harvest disposals leave it."""
        listing = cls(rules)
        for d in sorted(disposals, key=lambda d: d.sold_on):
            if d.harvest:
                listing.add_harvest(d.account, d.asset, d.sold_on, -d.gain_usd, d.quantity)
        return listing
