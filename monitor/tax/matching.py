"""Matching and basis by the rule pack: the one implementation the plan and the ledger share.

`book(rules, account, asset, buys, sales)` turns one taxpayer's history of one asset
(every acquisition, every sale with the lots it physically closed) into the disposals the
pack realizes and the cost each open lot carries afterwards:

- `specific` (us, au): each sale is matched to the lots it names (specific
  identification, within the wallet); a lot's basis is its own. With a wash-sale window
  (`[tax] wash_sale_days` > 0) a loss is disallowed in proportion to the same asset
  acquired in the window before or after it (not the lots sold; each replacement unit is
  used once), and the disallowed loss is added to the replacement lots' basis (IRC
  1091(d) model).
- `fifo` (de): a sale consumes the wallet's oldest units first, whatever the order named.
- `pool`, ca: one adjusted cost base per (account, asset), average cost (ITA s.47); a
  loss is superficial in proportion min(sold, acquired in the 30 days before or after,
  held at the end of day 30) / sold (ITA s.54) and the denied loss is added to the
  pool's ACB (s.53(1)(f)) at the sale.
- `pool`, uk (`same_day_matching`): a disposal matches acquisitions of the same day, then
  those of the next 30 days oldest first (bed and breakfast), then the Section 104 pool
  at average cost (TCGA 1992 s105, s106A, s104). Same-day matching is done for every
  sale before any bed-and-breakfast matching (it takes priority).

A later acquisition re-costs an earlier disposal wherever the law says so: booking the
whole history again gives the new figures (the ledger does that on every acquisition and
sale of the group, `monitor.ledger.books`), with the reason on each row.

The plan (`monitor.plan`) books a hypothetical sale against the lot book's open lots with
this same function, so what an alert says a harvest realizes is what the ledger books
after the fill. Amounts are exact Decimals, shares rounded to 18 places with the last part
taking the remainder, so rows always add up to their sale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from monitor.tax.disposal import Disposal
from monitor.tax.rules import ZERO, TaxRules

QUANTUM = Decimal("1e-18")
LAST = "~"  # sorts after every recorded time: a planned sale comes after what is known


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """total * part / whole to 18 places (callers give the remainder to the last part)."""
    if part == whole:
        return total
    with localcontext() as ctx:
        ctx.prec = 80
        return (total * part / whole).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Buy:
    """An acquisition: lot `lot_id` of `quantity` units for `cost` (fees included)."""

    lot_id: str
    wallet: str
    at: datetime
    quantity: Decimal
    cost: Decimal
    seq: str = ""  # when it was recorded: orders events at the same instant

    @property
    def day(self) -> date:
        return self.at.date()


@dataclass(frozen=True, slots=True)
class Sale:
    """A sale: the lots it physically closed, (lot_id, units, net proceeds) each."""

    sale_id: str
    wallet: str
    at: datetime
    parts: tuple[tuple[str, Decimal, Decimal], ...]
    harvest: bool = True
    alert_id: str = ""
    seq: str = LAST

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def quantity(self) -> Decimal:
        return sum((q for _, q, _ in self.parts), ZERO)

    @property
    def proceeds(self) -> Decimal:
        return sum((p for _, _, p in self.parts), ZERO)


@dataclass(frozen=True, slots=True)
class SaleBook:
    """How one sale was booked: its rows, why, and (windows) when a loss is allowed again."""

    rows: tuple[Disposal, ...]
    reason: str
    allowed_from: date | None = None

    @property
    def cost(self) -> Decimal:
        return sum((d.cost_basis_usd for d in self.rows), ZERO)

    @property
    def disallowed(self) -> Decimal:
        return sum((d.disallowed_loss_usd for d in self.rows), ZERO)


@dataclass(frozen=True, slots=True)
class Booked:
    """A group's books: each sale's booking (by sale_id) and each open lot's (units, cost)."""

    sales: dict[str, SaleBook]
    open: dict[str, tuple[Decimal, Decimal]]

    @property
    def disposals(self) -> list[Disposal]:
        return [d for sb in self.sales.values() for d in sb.rows]


@dataclass
class _Sold:
    """A sale while it is being booked: physical parts, cost and notes so far."""

    sale: Sale
    parts: list[tuple[str, Decimal, Decimal]]  # physical (lot_id, units, proceeds)
    cost: Decimal = ZERO
    disallowed: Decimal = ZERO
    notes: list[str] = field(default_factory=list)
    allowed_from: date | None = None
    left: Decimal = ZERO  # units not yet matched (uk)
    part_costs: list[Decimal] | None = None  # specific identification: each part's own


def book(
    rules: TaxRules, account: str, asset: str, buys: Sequence[Buy], sales: Sequence[Sale]
) -> Booked:
    """Book one (account, asset) history by the pack (see the module docstring)."""
    with localcontext() as ctx:
        ctx.prec = 80
        by_id = {b.lot_id: b for b in buys}
        sold = _physical(rules, buys, sales)
        open_qty = _open_quantities(buys, sold)
        basis = rules.pack.basis
        if basis == "pool" and rules.pack.same_day_matching:
            lot_cost = _uk(rules, buys, sold, open_qty)
        elif basis == "pool":
            lot_cost = _average(rules, buys, sold, open_qty)
        else:
            lot_cost = _specific(rules, buys, sold)
        result = {s.sale.sale_id: _rows(rules, account, asset, s, by_id) for s in sold}
        return Booked(result, {k: (q, lot_cost.get(k, ZERO)) for k, q in open_qty.items()})


def _order(events: Sequence[Buy | Sale]) -> list[Buy | Sale]:
    return sorted(events, key=lambda e: (e.at, e.seq))


def _physical(rules: TaxRules, buys: Sequence[Buy], sales: Sequence[Sale]) -> list[_Sold]:
    """Each sale's physical parts: as named, or (fifo) the wallet's oldest units first."""
    out: list[_Sold] = []
    if rules.pack.basis != "fifo":
        for sale in sorted(sales, key=lambda s: (s.at, s.seq)):
            out.append(_Sold(sale, list(sale.parts)))
        return out
    left = {b.lot_id: b.quantity for b in buys}
    for event in _order([*buys, *sales]):
        if isinstance(event, Buy):
            continue
        wanted, proceeds = event.quantity, event.proceeds
        queue = sorted(
            (b for b in buys if b.wallet == event.wallet and b.at <= event.at),
            key=lambda b: (b.at, b.lot_id),
        )
        parts: list[tuple[str, Decimal, Decimal]] = []
        for b in queue:
            if wanted <= 0:
                break
            take = min(wanted, left[b.lot_id])
            if take <= 0:
                continue
            parts.append((b.lot_id, take, ZERO))
            left[b.lot_id] -= take
            wanted -= take
        if wanted > 0:  # more sold than the wallet held by then: keep the named lots
            out.append(_Sold(event, list(event.parts)))
            continue
        total = event.quantity
        priced, given = [], ZERO
        for i, (lot_id, q, _) in enumerate(parts):
            p = proceeds - given if i == len(parts) - 1 else share(proceeds, q, total)
            given += p
            priced.append((lot_id, q, p))
        out.append(_Sold(event, priced))
    return out


def _open_quantities(buys: Sequence[Buy], sold: Sequence[_Sold]) -> dict[str, Decimal]:
    left = {b.lot_id: b.quantity for b in buys}
    for s in sold:
        for lot_id, q, _ in s.parts:
            if lot_id in left:
                left[lot_id] -= q
    return {k: q for k, q in left.items() if q > 0}


def _specific(rules: TaxRules, buys: Sequence[Buy], sold: Sequence[_Sold]) -> dict[str, Decimal]:
    """Own basis per lot (plus wash-sale adjustments); returns the open lots' cost."""
    held = {b.lot_id: (b.quantity, b.cost) for b in buys}
    used: dict[str, Decimal] = defaultdict(lambda: ZERO)  # replacement units used (wash sales)
    wash = rules.window_days > 0 and not rules.pack.window_held_at_end
    for s in sold:
        s.part_costs = []
        for lot_id, q, _ in s.parts:
            qty, cost = held.get(lot_id, (q, ZERO))
            taken = share(cost, q, qty) if qty > 0 else ZERO
            held[lot_id] = (qty - q, cost - taken)
            s.cost += taken
            s.part_costs.append(taken)
        s.notes.append("specific identification" if rules.pack.basis == "specific" else "fifo")
        loss = s.cost - s.sale.proceeds
        if wash and loss > 0:
            _wash_sale(rules, buys, s, loss, held, used)
    return {k: c for k, (q, c) in held.items() if q > 0}


def _wash_sale(
    rules: TaxRules,
    buys: Sequence[Buy],
    s: _Sold,
    loss: Decimal,
    held: dict[str, tuple[Decimal, Decimal]],
    used: dict[str, Decimal],
) -> None:
    """Disallow the part of `loss` replaced inside the window; add it to the replacements."""
    w = timedelta(days=rules.window_days)
    first = s.sale.day - w if rules.pack.window_before else s.sale.day
    names = {lot_id for lot_id, _, _ in s.parts}
    sold_q = s.sale.quantity
    window = [
        b
        for b in sorted(buys, key=lambda b: (b.at, b.seq))
        if first <= b.day <= s.sale.day + w and b.lot_id not in names
    ]
    picked: list[tuple[Buy, Decimal]] = []
    need = sold_q
    for b in window:
        free = b.quantity - used[b.lot_id]
        if (b.at, b.seq) <= (s.sale.at, s.sale.seq):  # bought before: only what is still held
            free = min(free, held.get(b.lot_id, (ZERO, ZERO))[0])
        take = min(need, free)
        if take <= 0:
            continue
        picked.append((b, take))
        used[b.lot_id] += take
        need -= take
        if need <= 0:
            break
    replaced = sold_q - need
    if replaced <= 0:
        return
    s.disallowed = share(loss, replaced, sold_q)
    s.allowed_from = max(b.day for b, _ in picked) + timedelta(days=rules.window_days + 1)
    days = ", ".join(sorted({b.day.isoformat() for b, _ in picked}))
    s.notes.append(f"wash_sale: {_fmt(replaced)} replaced ({days})")
    given = ZERO
    for i, (b, take) in enumerate(picked):
        add = s.disallowed - given if i == len(picked) - 1 else share(s.disallowed, take, replaced)
        given += add
        qty, cost = held.get(b.lot_id, (b.quantity, b.cost))
        held[b.lot_id] = (qty, cost + add)


def _average(
    rules: TaxRules, buys: Sequence[Buy], sold: Sequence[_Sold], open_qty: dict[str, Decimal]
) -> dict[str, Decimal]:
    """ca: one average-cost pool; superficial losses added to its ACB."""
    by_sale = {id(s.sale): s for s in sold}
    pool_q = pool_c = ZERO
    physical = {b.lot_id: b.quantity for b in buys}
    for event in _order([*buys, *(s.sale for s in sold)]):
        if isinstance(event, Buy):
            pool_q += event.quantity
            pool_c += event.cost
            continue
        s = by_sale[id(event)]
        held_before = dict(physical)
        for lot_id, part, _ in s.parts:
            physical[lot_id] = physical.get(lot_id, ZERO) - part
        q = event.quantity
        s.cost = pool_c if q >= pool_q else share(pool_c, q, pool_q)
        pool_q, pool_c = max(ZERO, pool_q - q), pool_c - s.cost
        s.notes.append("average cost (ACB)")
        loss = s.cost - event.proceeds
        if loss > 0 and rules.window_days > 0:
            denied = _superficial(rules, buys, sold, s, loss, held_before)
            pool_c += denied
    return _spread(open_qty, buys, pool_q, pool_c, frozenset())


def _superficial(
    rules: TaxRules,
    buys: Sequence[Buy],
    sold: Sequence[_Sold],
    s: _Sold,
    loss: Decimal,
    held_before: dict[str, Decimal],
) -> Decimal:
    """ITA s.54: denied = loss * min(sold, acquired in the window, held at its end) / sold.

    Acquired in the window: units bought in the 30 days before the sale that are still held
    when it happens (those sold earlier cannot be the substituted property), and every unit
    bought in the 30 days after it."""
    w = timedelta(days=rules.window_days)
    day = s.sale.day
    first = day - w if rules.pack.window_before else day
    last = day + w
    acquired_list: list[Buy] = []
    acquired = ZERO
    for b in buys:
        if not first <= b.day <= last:
            continue
        before = (b.at, b.seq) <= (s.sale.at, s.sale.seq)
        units = min(b.quantity, held_before.get(b.lot_id, ZERO)) if before else b.quantity
        if units > 0:
            acquired_list.append(b)
            acquired += units
    bought_by_end = sum((b.quantity for b in buys if b.day <= last), ZERO)
    sold_by_end = sum((x.sale.quantity for x in sold if x.sale.day <= last), ZERO)
    held = bought_by_end - sold_by_end
    if not rules.pack.window_held_at_end:
        held = acquired
    units = min(s.sale.quantity, acquired, held)
    if units <= 0:
        return ZERO
    s.disallowed = share(loss, units, s.sale.quantity)
    s.allowed_from = max(b.day for b in acquired_list) + timedelta(days=rules.window_days + 1)
    reason = "superficial_loss" if rules.pack.window_held_at_end else "wash_sale"
    s.notes.append(
        f"{reason}: {_fmt(units)} of {_fmt(s.sale.quantity)} units replaced "
        f"({_fmt(acquired)} acquired {first.isoformat()} to {last.isoformat()}, "
        f"{_fmt(max(held, ZERO))} held at the end); denied loss added to the ACB"
    )
    return s.disallowed


def _uk(
    rules: TaxRules, buys: Sequence[Buy], sold: Sequence[_Sold], open_qty: dict[str, Decimal]
) -> dict[str, Decimal]:
    """uk: same day, then bed and breakfast (30 days), then the s104 pool."""
    left = {b.lot_id: b.quantity for b in buys}
    ordered_buys = sorted(buys, key=lambda b: (b.at, b.seq, b.lot_id))
    matched: set[str] = set()  # by bed and breakfast
    parts: dict[int, list[tuple[str, Decimal, Decimal, date]]] = defaultdict(list)
    for s in sold:
        s.left = s.sale.quantity

    def match(s: _Sold, rule: str, candidates: list[Buy]) -> None:
        for b in candidates:
            if s.left <= 0:
                return
            take = min(s.left, left[b.lot_id])
            if take <= 0:
                continue
            cost = share(b.cost, take, b.quantity)
            parts[id(s)].append((rule, take, cost, b.day))
            left[b.lot_id] -= take
            s.left -= take
            s.cost += cost
            if rule == "bed_and_breakfast":
                matched.add(b.lot_id)

    for s in sold:  # same day first, for every sale (s105 takes priority over s106A)
        match(s, "same_day", [b for b in ordered_buys if b.day == s.sale.day])
    for s in sold:  # then the next 30 days, oldest first
        end = s.sale.day + timedelta(days=30)
        match(s, "bed_and_breakfast", [b for b in ordered_buys if s.sale.day < b.day <= end])
    pool_q = pool_c = ZERO
    by_sale = {id(s.sale): s for s in sold}
    for event in _order([*buys, *(s.sale for s in sold)]):
        if isinstance(event, Buy):
            rest = left[event.lot_id]
            if rest > 0:
                pool_q += rest
                pool_c += share(event.cost, rest, event.quantity)
            continue
        s = by_sale[id(event)]
        if s.left <= 0:
            continue
        cost = pool_c if s.left >= pool_q else share(pool_c, s.left, pool_q)
        parts[id(s)].append(("s104", s.left, cost, s.sale.day))
        pool_q, pool_c = max(ZERO, pool_q - s.left), pool_c - cost
        s.cost += cost
        s.left = ZERO
    for s in sold:
        s.notes.append(_uk_note(parts[id(s)]))
    last_day = max(s.sale.day for s in sold) if sold else None
    fresh = frozenset(
        b.lot_id
        for b in buys
        if b.lot_id not in matched
        and (last_day is None or b.day >= last_day)
        and open_qty.get(b.lot_id) == left[b.lot_id]
    )
    return _spread(open_qty, buys, pool_q, pool_c, fresh)


def _uk_note(parts: list[tuple[str, Decimal, Decimal, date]]) -> str:
    """'same_day 1; bed_and_breakfast 2 (2025-05-10); s104 7' (units per rule)."""
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    days: dict[str, set[str]] = defaultdict(set)
    for rule, q, _, day in parts:
        totals[rule] += q
        days[rule].add(day.isoformat())
    out = []
    for rule in ("same_day", "bed_and_breakfast", "s104"):
        if rule in totals:
            when = f" ({', '.join(sorted(days[rule]))})" if rule == "bed_and_breakfast" else ""
            out.append(f"{rule} {_fmt(totals[rule])}{when}")
    return "; ".join(out)


def _spread(
    open_qty: dict[str, Decimal],
    buys: Sequence[Buy],
    pool_q: Decimal,
    pool_c: Decimal,
    fresh: frozenset[str],
) -> dict[str, Decimal]:
    """The pool's cost over the open lots: `fresh` lots (uk: bought on the day of the last
    sale or later and not matched to a sale since) keep their own unit cost, so a sale
    later that day matches them as the same-day rule says; the others share the rest at
    the average."""
    by_id = {b.lot_id: b for b in buys}
    out: dict[str, Decimal] = {}
    rest_c = pool_c
    for lot_id in open_qty:
        if lot_id in fresh:
            b = by_id[lot_id]
            out[lot_id] = share(b.cost, open_qty[lot_id], b.quantity)
            rest_c -= out[lot_id]
    others = [k for k in open_qty if k not in fresh]
    rest_q = sum((open_qty[k] for k in others), ZERO)
    given = ZERO
    for i, lot_id in enumerate(others):
        if i == len(others) - 1:
            out[lot_id] = rest_c - given
        else:
            out[lot_id] = share(rest_c, open_qty[lot_id], rest_q)
            given += out[lot_id]
    _ = pool_q
    return out


def _rows(rules: TaxRules, account: str, asset: str, s: _Sold, by_id: dict[str, Buy]) -> SaleBook:
    """One disposal per physical part: cost shared by units, the disallowed part over the
    rows with a loss (by their loss), each with the sale's reason."""
    sale = s.sale
    total_q = sale.quantity
    reason = "; ".join(n for n in s.notes if n)
    costs: list[Decimal] = list(s.part_costs) if s.part_costs is not None else []
    given = ZERO
    for i, (_, q, _) in enumerate(s.parts if s.part_costs is None else ()):
        c = s.cost - given if i == len(s.parts) - 1 else share(s.cost, q, total_q)
        given += c
        costs.append(c)
    losses = [max(ZERO, c - p) for c, (_, _, p) in zip(costs, s.parts, strict=True)]
    total_loss = sum(losses, ZERO)
    dis: list[Decimal] = [ZERO] * len(costs)
    if s.disallowed > 0 and total_loss > 0:
        amount = min(s.disallowed, total_loss)
        lossy = [i for i, x in enumerate(losses) if x > 0]
        given = ZERO
        for n, i in enumerate(lossy):
            d = amount - given if n == len(lossy) - 1 else share(amount, losses[i], total_loss)
            given += d
            dis[i] = d
    rows = []
    for (lot_id, q, p), c, d in zip(s.parts, costs, dis, strict=True):
        buy = by_id.get(lot_id)
        acquired = buy.day if buy is not None else sale.day
        rows.append(
            Disposal(
                lot_id=lot_id,
                account=account,
                wallet=buy.wallet if buy is not None else sale.wallet,
                asset=asset,
                quantity=q,
                acquired_on=acquired,
                sold_on=sale.day,
                proceeds_usd=p,
                cost_basis_usd=c,
                term=rules.term(acquired, sale.day),
                harvest=sale.harvest,
                alert_id=sale.alert_id,
                disallowed_loss_usd=d,
                reason=reason,
            )
        )
    return SaleBook(tuple(rows), reason, s.allowed_from)


def _fmt(q: Decimal) -> str:
    return format(q.normalize(), "f")
