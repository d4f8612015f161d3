"""Harvest proposals: what selling the crossed lots of one (account, wallet, asset) is worth,
and the plan that goes with it (lots, quantity, rebuy, windows), by the rule pack.

Every amount is exact (Decimal, from the lots' exact quantity and basis and the price's
decimal text); rounding to cents happens only when the alert is written
(monitor/alerts/render.py). docs/tax.md traces each field to a pack key or a setting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from itertools import groupby

import numpy as np
from prometheus_client import Counter as PromCounter

from monitor.book import I64, Crossing, LotBook
from monitor.settings import HarvestSettings, Settings
from monitor.tax.matching import Buy, Sale, SaleBook
from monitor.tax.matching import book as book_sale
from monitor.tax.netting import loss_value
from monitor.tax.rules import ZERO, TaxRules, exact, tax_rules
from monitor.tax.selection import LotRow, Selection, Take, order_lots, sell_quantity, take
from monitor.tax.windows import NONE, Disallowance
from monitor.triggers import EPOCH, day_of_ms

# Quantities have up to 18 places and prices up to 17 significant digits: their products
# and sums need more than Decimal's default 28 digits to stay exact.
PRECISION = 60
PLANS_SKIPPED = PromCounter(
    "hm_harvest_plans_skipped_total",
    "Crossings that made no alert, by reason (below_step_size, below_min_notional, "
    "disallowed, below_min_net_benefit, net_gain; deadlines: no_value_lost, "
    "not_worth_costs).",
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
    book: LotBook, crossing: Crossing, price: float | Decimal, ts_ms: int, planner: Planner
) -> list[HarvestProposal]:
    """One proposal per (account, wallet) among the crossed lots (harvest, then deadline,
    then reminder), in (account, wallet) order."""
    # A Decimal is the venue's own digits (Tick.exact_price); a float the consensus.
    exact_price = price if isinstance(price, Decimal) else Decimal(repr(price))
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
                    kind, ts_ms,
                )  # fmt: skip
            if isinstance(result, str):
                planner.skip(result)
            else:
                out.append(result)
    return out


def lot_rows(book: LotBook, rows: I64, day: date) -> list[LotRow]:
    """The lots at `rows` with their open cost (the ledger's booking: own, or the pool's)."""
    return book.columns.rows(rows)


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
    ts_ms: int | None = None,
) -> HarvestProposal | str:
    """The proposal for one (account, wallet, asset), or the reason there is none.

    The lots are chosen by the selection order (pool packs: oldest first, fifo packs the
    wallet's prefix); what the sale realizes is booked by the pack's matching
    (`monitor.tax.matching.book`), the function the ledger books the fill with, so the
    alert's figures are the ledger's. A harvest whose lots net to a gain is not proposed
    (`net_gain`); one with a gain on some lots says so in its warnings."""
    tax = planner.tax
    selection: str = planner.selection
    if tax.pack.basis == "fifo":
        ordered, crossed_only = fifo_prefix(book, planner, account, wallet, asset, rows, price, day)
        selection = "fifo_consumption"
    else:
        lots = lot_rows(book, rows, day)
        how = pack_order(tax, planner.selection)
        ordered, crossed_only = order_lots(lots, how, price), True
        selection = "pool" if tax.pack.basis == "pool" else selection
    held = sum((lot.quantity for lot in ordered), ZERO)
    step = planner.step_sizes.get(asset, planner.step_size)
    quantity, reason = sell_quantity(held, price, step, planner.min_notional, planner.max_sell_usd)
    if reason:
        return reason
    takes = take(ordered, quantity)  # in selection order: a partial fill sells the first
    modified = not crossed_only or quantity != held
    when = _tick_time(day, ts_ms)
    booked = realized(book, tax, account, wallet, asset, takes, price, when)
    planned = tuple(
        PlannedLot(d.lot_id, t.lot.acquired, d.term, d.quantity, d.cost_basis_usd, d.proceeds_usd)
        for t, d in zip(takes, booked.rows, strict=True)
    )
    basis = proceeds = short = long = ZERO
    for lot in planned:
        if lot.term == "long":
            long += lot.loss
        else:
            short += lot.loss
        basis += lot.cost_basis
        proceeds += lot.proceeds
    loss = basis - proceeds
    if kind == "harvest" and counted_loss(tax, short, long) <= 0:
        return "net_gain"  # the lots' losses do not outweigh the gains sold with them
    disallowed = disallowance_of(tax, booked)
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
        # The trigger values a lot alone (pool packs: at the pool's average over every
        # lot); same-day matching, a cut quantity, a disallowance or the ytd position can
        # make the sale worth less: value it again.
        recheck = (
            modified
            or disallowed.amount > 0
            or tax.value_model == "ytd"
            or tax.pack.basis == "pool"
        )
        if recheck and value - cost < floor:
            return "below_min_net_benefit"
    rebuy, warnings = rebuy_plan(book, planner, account, asset, day, proceeds)
    warnings = [*sale_warnings(tax, planned, booked), *warnings]
    allowed = loss - disallowed.amount
    deferral = ZERO
    if rebuy.mode != "none":
        deferral = max(ZERO, min(value, allowed * tax.flat_rate("long")))
    first_buy = tax.first_rebuy_day(day)
    return HarvestProposal(
        account=account,
        wallet=wallet,
        asset=asset,
        lot_ids=tuple(sorted(lot.lot_id for lot in planned)),
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


def pack_order(tax: TaxRules, selection: Selection) -> Selection:
    """The order a harvest takes lots in: the configured one (specific identification);
    pool packs, where the cost does not depend on it, oldest first, or (uk) newest first,
    so the lots left open are those the same-day rule has not matched."""
    if tax.pack.basis != "pool":
        return selection
    return "lifo" if tax.pack.same_day_matching else "fifo"


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


def _tick_time(day: date, ts_ms: int | None) -> datetime:
    """The tick's time (the sale's), or the start of `day` when it is not known."""
    if ts_ms is None:
        return datetime.combine(day, time.min, UTC)
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def realized(
    book: LotBook,
    tax: TaxRules,
    account: str,
    wallet: str,
    asset: str,
    takes: list[Take],
    price: Decimal,
    when: datetime,
) -> SaleBook:
    """What selling `takes` at `price` at `when` realizes, booked by the pack's matching
    against the book's open lots (pool packs: the account's lots of the asset; windows:
    the acquisitions inside the window before the sale too)."""
    buys: dict[str, Buy] = {}
    if tax.pack.basis == "pool":
        rows = book.account_rows(account, asset)
        cols = book.columns
        for row, lot in zip(rows, cols.rows(rows), strict=True):
            buys[lot.lot_id] = _buy(lot, cols.wallet[int(row)])
    for t in takes:
        buys.setdefault(t.lot.lot_id, _buy(t.lot, wallet))
    if tax.pack.basis != "pool" and tax.window_days > 0:
        first = when.date() - timedelta(days=tax.window_days)
        for a in book.acquisitions.between(account, asset, first, when.date()):
            at = datetime.combine(a.day, time.min, UTC)
            buys.setdefault(a.lot_id, Buy(a.lot_id, a.wallet, at, a.quantity, a.cost_usd))
    parts = tuple((t.lot.lot_id, t.quantity, t.quantity * price) for t in takes)
    sale = Sale("plan", wallet, when, parts)
    return book_sale(tax, account, asset, list(buys.values()), [sale]).sales["plan"]


def _buy(lot: LotRow, wallet: str) -> Buy:
    return Buy(lot.lot_id, wallet, datetime.combine(lot.acquired, time.min, UTC), lot.quantity,
               lot.cost_basis)  # fmt: skip


def counted_loss(tax: TaxRules, short: Decimal, long: Decimal) -> Decimal:
    """The sale's net loss after netting inside it, as the pack counts it: long-term
    results do not count where long-term units are tax-free (de)."""
    return short + (ZERO if tax.pack.long_term_exempt else long)


def disallowance_of(tax: TaxRules, booked: SaleBook) -> Disallowance:
    """The booked sale's disallowed loss, as the plan reports it."""
    amount = booked.disallowed
    if amount <= 0:
        return NONE
    reason = "superficial_loss" if tax.pack.window_held_at_end else "wash_sale"
    return Disallowance(amount, booked.allowed_from, reason)


def sale_warnings(tax: TaxRules, planned: tuple[PlannedLot, ...], booked: SaleBook) -> list[str]:
    """What the alert must say about the sale itself: gains realized beside the losses, and
    matching that is not the lots' own cost (uk same day)."""
    out = []
    gains = sum((max(ZERO, -lot.loss) for lot in planned), ZERO)
    if gains > 0:
        lots = sum(1 for lot in planned if lot.loss < 0)
        out.append(
            f"this sale realizes gains too: {gains.quantize(Decimal('0.01'))} on {lots} "
            "lot(s), netted in the loss"
        )
    if tax.pack.same_day_matching and "same_day" in booked.reason:
        out.append(f"{tax.name}: matched as {booked.reason} (same-day acquisitions first)")
    return out


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
