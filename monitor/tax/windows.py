"""Windows around a sale: wash sales (us, when enabled), superficial losses (ca), bed and
breakfast (uk), the do-not-buy-until list, and the acquisitions they are checked against.

- us (`wash_sale_days` = W > 0): a loss is disallowed in proportion to the same asset
  acquired in the W days before or after the sale (IRC 1091 model, if extended to
  crypto): disallowed = loss * min(1, replacement / sold).
- ca: a loss is denied in proportion to the same asset acquired 30 days before or after
  the sale that is still held at the end of the 30th day after it (ITA s.54):
  denied = loss * min(sold, acquired, still held) / sold.
- uk: a disposal matches same-day acquisitions first, then those of the next 30 days,
  then the Section 104 pool (TCGA 1992 s105, s106A, s104): `match_uk`.

After a harvest in a pack with a window or a waiting period, the asset goes on the
account's do-not-buy-until list; an acquisition inside it raises a warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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
    reason: str  # "", wash_sale, superficial_loss, uk_same_day


NONE = Disallowance(ZERO, None, "")


def replacement_quantity(
    rules: TaxRules,
    log: AcquisitionLog,
    account: str,
    asset: str,
    sold_on: date,
    excluded: frozenset[str],
) -> tuple[Decimal, date | None]:
    """Quantity acquired inside the window before the sale (not counting the lots sold,
    `excluded` by lot id), and the last day of those acquisitions."""
    if rules.window_days == 0 or not rules.pack.window_before:
        return ZERO, None
    first = sold_on - timedelta(days=rules.window_days)
    found = [a for a in log.between(account, asset, first, sold_on) if a.lot_id not in excluded]
    if not found:
        return ZERO, None
    return sum((a.quantity for a in found), ZERO), max(a.day for a in found)


def window_disallowance(
    rules: TaxRules, loss: Decimal, sold: Decimal, replacement: Decimal, last_day: date | None
) -> Disallowance:
    """Disallowed part of `loss` on `sold` units when `replacement` units were acquired in
    the window (ca: they are still held at the end of it unless they are sold too)."""
    if loss <= 0 or sold <= 0 or replacement <= 0 or last_day is None:
        return NONE
    share = min(sold, replacement) / sold
    reason = "superficial_loss" if rules.pack.window_held_at_end else "wash_sale"
    allowed = last_day + timedelta(days=rules.window_days + 1)
    return Disallowance(loss * share, allowed, reason)


@dataclass(frozen=True, slots=True)
class Matched:
    """One part of a UK disposal and the acquisition cost it is matched with."""

    rule: str  # same_day, bed_and_breakfast, s104
    quantity: Decimal
    cost_usd: Decimal


def match_uk(
    sold_on: date,
    quantity: Decimal,
    acquisitions: Sequence[Acquisition],
    pool_quantity: Decimal,
    pool_cost: Decimal,
) -> list[Matched]:
    """Match a disposal: same day, then the next 30 days oldest first, then the s104 pool.

    `acquisitions` are the account's acquisitions of the asset on or after `sold_on`
    (others are in the pool already); the pool is what was held before `sold_on`.
    """
    parts: list[Matched] = []
    left = quantity
    same_day = [a for a in acquisitions if a.day == sold_on]
    following = sorted(
        (a for a in acquisitions if sold_on < a.day <= sold_on + timedelta(days=30)),
        key=lambda a: a.day,
    )
    for rule, group in (("same_day", same_day), ("bed_and_breakfast", following)):
        for acquisition in group:
            if left <= 0:
                break
            take = min(left, acquisition.quantity)
            parts.append(Matched(rule, take, acquisition.cost_usd * take / acquisition.quantity))
            left -= take
    if left > 0:
        if left > pool_quantity:
            raise ValueError(f"sells {quantity} but only {pool_quantity} is held in the pool")
        parts.append(Matched("s104", left, pool_cost * left / pool_quantity))
    return parts


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
