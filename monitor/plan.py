"""Harvest proposals: what selling the crossed lots of one (account, wallet, asset) is worth,
and the plan that goes with it (lots, quantity, rebuy, windows), by the rule pack.

Every amount is exact (Decimal, from the lots' exact quantity and basis and the price's
decimal text); rounding to cents happens only when the alert is written
(monitor/alerts/render.py). docs/tax.md traces each field to a pack key or a setting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, localcontext
from itertools import groupby

import numpy as np
from prometheus_client import Counter as PromCounter

from monitor.book import I64, Crossing, LotBook
from monitor.settings import HarvestSettings, Settings
from monitor.tax.netting import loss_value
from monitor.tax.rules import ZERO, TaxRules, exact, tax_rules
from monitor.tax.selection import LotRow, Selection, Take, order_lots, sell_quantity, take
from monitor.tax.windows import (
    NONE,
    Disallowance,
    match_uk,
    replacement_quantity,
    window_disallowance,
)
from monitor.triggers import EPOCH, day_of_ms

# Quantities have up to 18 places and prices up to 17 significant digits: their products
# and sums need more than Decimal's default 28 digits to stay exact.
PRECISION = 60
PLANS_SKIPPED = PromCounter(
    "hm_harvest_plans_skipped_total",
    "Crossings that made no alert, by reason (below_step_size, below_min_notional, "
    "disallowed, below_min_net_benefit; deadlines: no_value_lost, not_worth_costs).",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class PlannedLot:
    lot_id: str
    acquired: date
    term: str
    quantity: Decimal
    cost_basis: Decimal
    proceeds: Decimal

    @property
    def loss(self) -> Decimal:
        return self.cost_basis - self.proceeds


@dataclass(frozen=True, slots=True)
class RebuyPlan:
    mode: str  # same | replacement | none
    asset: str = ""
    not_before: date | None = None
    notional: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class HarvestProposal:
    """Sell these lots at `price`: exact amounts before rounding, and the plan around it."""

    account: str
    wallet: str
    asset: str
    lot_ids: tuple[str, ...]
    quantity: Decimal
    price: Decimal
    cost_basis: Decimal
    proceeds: Decimal
    short_term_loss: Decimal
    long_term_loss: Decimal
    tax_savings: Decimal
    cost: Decimal
    kind: str = "harvest"
    lots: tuple[PlannedLot, ...] = ()
    lot_selection: str = "max_loss"
    legs: int = 2
    rebuy: RebuyPlan = RebuyPlan("same")
    disallowed: Disallowance = NONE
    permanent: Decimal = ZERO
    deferral: Decimal = ZERO
    deadline: date | None = None
    do_not_buy_until: date | None = None
    warnings: tuple[str, ...] = ()

    @property
    def loss(self) -> Decimal:
        return self.cost_basis - self.proceeds

    @property
    def net_benefit(self) -> Decimal:
        return self.tax_savings - self.cost


@dataclass
class Planner:
    """Turns crossed lots into proposals by the pack and `[harvest]`; counts what it skips."""

    tax: TaxRules
    selection: Selection = "max_loss"
    cost_rate: Decimal = Decimal("0.003")  # all legs, fraction of notional
    legs: int = 2
    rebuy: str = "same"
    rebuy_delay_days: int = 0
    replacements: dict[str, str] = field(default_factory=dict)
    step_size: Decimal = ZERO
    step_sizes: dict[str, Decimal] = field(default_factory=dict)
    min_notional: Decimal = ZERO
    max_sell_usd: Decimal = ZERO
    skipped: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings, tax: TaxRules | None = None) -> Planner:
        h: HarvestSettings = settings.harvest
        return cls(
            tax=tax or tax_rules(settings.tax),
            selection=h.lot_selection,
            cost_rate=h.legs * (exact(h.fee_rate) + exact(h.slippage_bps) / 10_000),
            legs=h.legs,
            rebuy=h.rebuy,
            rebuy_delay_days=h.rebuy_delay_days,
            replacements=dict(h.replacements),
            step_size=h.step_size,
            step_sizes=dict(h.step_sizes),
            min_notional=h.min_notional_usd,
            max_sell_usd=h.max_sell_usd,
        )

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1
        PLANS_SKIPPED.labels(reason).inc()


def propose(
    book: LotBook, crossing: Crossing, price: float, ts_ms: int, planner: Planner
) -> list[HarvestProposal]:
    """One proposal per (account, wallet) among the crossed lots (harvest, then deadline,
    then reminder), in (account, wallet) order."""
    exact_price = Decimal(repr(price))
    day = EPOCH + timedelta(days=day_of_ms(ts_ms))
    cols = book.columns
    out: list[HarvestProposal] = []
    kinds = (
        ("harvest", crossing.rows),
        ("deadline", crossing.deadline_rows),
        ("reminder", crossing.reminder_rows),
    )
    for kind, rows in kinds:
        ordered = sorted(rows.tolist(), key=lambda r: (cols.account[r], cols.wallet[r]))
        for (account, wallet), group in groupby(
            ordered, key=lambda r: (cols.account[r], cols.wallet[r])
        ):
            group_rows = np.asarray(list(group), dtype=np.int64)
            with localcontext(prec=PRECISION):
                result = plan_one(
                    book, planner, account, wallet, crossing.asset, group_rows, exact_price, day,
                    kind,
                )  # fmt: skip
            if isinstance(result, str):
                planner.skip(result)
            else:
                out.append(result)
    return out


def lot_rows(book: LotBook, rows: I64, day: date) -> list[LotRow]:
    """The lots at `rows` with the basis the pack uses (own, or the average-cost pool's)."""
    cols = book.columns
    out = cols.rows(rows)
    if book.tax.pack.basis != "pool":
        return out
    pools: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    pooled: list[LotRow] = []
    for lot, r in zip(out, rows, strict=True):
        key = (cols.account[r], cols.asset[r])
        if key not in pools:
            pools[key] = pool_of(book, *key, day)
        pool_q, pool_c = pools[key]
        share = lot.cost_basis if pool_q == 0 else pool_c * lot.quantity / pool_q
        pooled.append(LotRow(lot.lot_id, lot.acquired, lot.quantity, share))
    return pooled


def pool_of(book: LotBook, account: str, asset: str, day: date) -> tuple[Decimal, Decimal]:
    """Quantity and cost of the account's average-cost pool of `asset` on `day` (uk: lots
    bought on `day` are matched first, so they are not in the pool yet)."""
    cols = book.columns
    rows = book.account_rows(account, asset)
    if book.tax.pack.same_day_matching:
        rows = rows[cols.acquired_day[rows] < (day - EPOCH).days]
    _, quantities, costs = cols.amounts(rows)
    return sum(quantities, ZERO), sum(costs, ZERO)


def plan_one(
    book: LotBook,
    planner: Planner,
    account: str,
    wallet: str,
    asset: str,
    rows: I64,
    price: Decimal,
    day: date,
    kind: str,
) -> HarvestProposal | str:
    """The proposal for one (account, wallet, asset), or the reason there is none."""
    tax = planner.tax
    selection: str = planner.selection
    if tax.pack.basis == "fifo":
        ordered, crossed_only = fifo_prefix(book, planner, account, wallet, asset, rows, price, day)
        selection = "fifo_consumption"
    else:
        lots = lot_rows(book, rows, day)
        how: Selection = "fifo" if tax.pack.basis == "pool" else planner.selection
        ordered, crossed_only = order_lots(lots, how, price), True
        selection = "pool" if tax.pack.basis == "pool" else selection
    held = sum((lot.quantity for lot in ordered), ZERO)
    step = planner.step_sizes.get(asset, planner.step_size)
    quantity, reason = sell_quantity(held, price, step, planner.min_notional, planner.max_sell_usd)
    if reason:
        return reason
    takes = sorted(take(ordered, quantity), key=lambda t: t.lot.lot_id)
    modified = not crossed_only or quantity != held
    planned = tuple(
        PlannedLot(
            t.lot.lot_id, t.lot.acquired, tax.term(t.lot.acquired, day), t.quantity,
            t.cost_basis, t.quantity * price,
        )
        for t in takes
    )  # fmt: skip
    basis = proceeds = short = long = ZERO
    for lot in planned:
        if lot.term == "long":
            long += lot.loss
        else:
            short += lot.loss
        basis += lot.cost_basis
        proceeds += lot.proceeds
    loss = basis - proceeds
    disallowed = disallowance(book, tax, account, asset, takes, day, loss)
    if disallowed.amount > 0 and tax.pack.on_disallowed == "exclude":
        return "disallowed"
    allowed_short, allowed_long = short, long
    if disallowed.amount > 0:  # pro rata over the lots' characters
        kept = 1 - disallowed.amount / loss
        allowed_short, allowed_long = short * kept, long * kept
    position = book.position(account)
    value = loss_value(tax, position, allowed_short, allowed_long)
    cost = planner.cost_rate * proceeds
    deadline = None
    if kind == "deadline":
        later = loss_value(tax, position, ZERO, allowed_short + allowed_long)
        if value - later <= 0:
            return "no_value_lost"
        if value - cost <= 0:
            return "not_worth_costs"
        deadline = min(tax.long_term_from(lot.acquired) or day for lot in planned)
    else:
        floor = exact(book.rules.on((day - EPOCH).days).min_net_benefit_usd)
        recheck = modified or disallowed.amount > 0 or tax.value_model == "ytd"
        if recheck and value - cost < floor:
            return "below_min_net_benefit"
    rebuy, warnings = rebuy_plan(book, planner, account, asset, day, proceeds)
    allowed = loss - disallowed.amount
    deferral = ZERO
    if rebuy.mode != "none":
        deferral = max(ZERO, min(value, allowed * tax.flat_rate("long")))
    first_buy = tax.first_rebuy_day(day)
    return HarvestProposal(
        account=account,
        wallet=wallet,
        asset=asset,
        lot_ids=tuple(lot.lot_id for lot in planned),
        quantity=quantity,
        price=price,
        cost_basis=basis,
        proceeds=proceeds,
        short_term_loss=short,
        long_term_loss=long,
        tax_savings=value,
        cost=cost,
        kind=kind,
        lots=planned,
        lot_selection=selection,
        legs=planner.legs,
        rebuy=rebuy,
        disallowed=disallowed,
        permanent=value - deferral,
        deferral=deferral,
        deadline=deadline,
        do_not_buy_until=first_buy if first_buy > day else None,
        warnings=tuple(warnings),
    )


def fifo_prefix(
    book: LotBook,
    planner: Planner,
    account: str,
    wallet: str,
    asset: str,
    rows: I64,
    price: Decimal,
    day: date,
) -> tuple[list[LotRow], bool]:
    """de: a sale consumes the wallet's oldest units first, so selling a crossed lot sells
    every older lot too. The prefix (ending at a crossed lot) worth the most after costs."""
    tax = planner.tax
    wallet_lots = order_lots(
        lot_rows(book, book.wallet_rows(account, wallet, asset), day), "fifo", price
    )
    crossed = {lot.lot_id for lot in lot_rows(book, rows, day)}
    best: tuple[Decimal, int] | None = None
    short = long = proceeds = ZERO
    for i, lot in enumerate(wallet_lots):
        lot_loss = lot.cost_basis - lot.quantity * price
        if tax.term(lot.acquired, day) == "long":
            long += lot_loss
        else:
            short += lot_loss
        proceeds += lot.quantity * price
        if lot.lot_id in crossed:
            net = (
                loss_value(tax, book.position(account), short, long) - planner.cost_rate * proceeds
            )
            if best is None or net > best[0]:
                best = (net, i)
    end = best[1] if best is not None else -1
    prefix = wallet_lots[: end + 1]
    return prefix, {lot.lot_id for lot in prefix} == crossed


def disallowance(
    book: LotBook,
    tax: TaxRules,
    account: str,
    asset: str,
    takes: list[Take],
    day: date,
    loss: Decimal,
) -> Disallowance:
    """The part of `loss` a window takes away, by the pack (monitor/tax/windows.py)."""
    if loss <= 0:
        return NONE
    sold = sum((t.quantity for t in takes), ZERO)
    if tax.pack.same_day_matching:
        same_day = book.acquisitions.between(account, asset, day, day)
        if not same_day:
            return NONE
        pool_q, pool_c = pool_of(book, account, asset, day)
        try:
            parts = match_uk(day, sold, same_day, pool_q, pool_c)
        except ValueError:
            return NONE
        lost = sum((t.cost_basis for t in takes), ZERO) - sum((p.cost_usd for p in parts), ZERO)
        if lost <= 0:
            return NONE
        return Disallowance(min(lost, loss), day + timedelta(days=1), "uk_same_day")
    excluded = frozenset(t.lot.lot_id for t in takes)
    replacement, last = replacement_quantity(tax, book.acquisitions, account, asset, day, excluded)
    return window_disallowance(tax, loss, sold, replacement, last)


def rebuy_plan(
    book: LotBook, planner: Planner, account: str, asset: str, day: date, notional: Decimal
) -> tuple[RebuyPlan, list[str]]:
    """The second leg: `[harvest] rebuy`, held back to the pack's first allowed day."""
    if planner.rebuy == "none":
        return RebuyPlan("none"), []
    tax = planner.tax
    wanted = day + timedelta(days=planner.rebuy_delay_days)
    warnings: list[str] = []
    if planner.rebuy == "replacement":
        other = planner.replacements.get(asset, "")
        if other and other != asset and book.do_not_buy.check(account, other, day) is None:
            return RebuyPlan("replacement", other, wanted, notional), warnings
        why = "is on the do-not-buy list" if other else "is configured"
        warnings.append(f"no replacement for {asset} {why}: buying {asset} itself back")
    first = tax.first_rebuy_day(day)
    if first > wanted:
        warnings.append(
            f"{tax.name}: not before {first.isoformat()}: {tax.pack.rebuy_warning}".rstrip(": ")
        )
    return RebuyPlan("same", asset, max(first, wanted), notional), warnings
