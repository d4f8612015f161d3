"""Harvest proposals: what selling the crossed lots of one (account, wallet, asset) is worth.

Every amount is exact (Decimal, from the lots' exact quantity and basis and the price's
decimal text); rounding to cents happens only when the alert is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import polars as pl

from monitor.alerts.schema import Alert, alert_id, cents, plain
from monitor.book import Crossing, LotBook
from monitor.triggers import day_of_ms, epoch_day, long_term_from
from streams.ticks import format_ts_ms


@dataclass(frozen=True, slots=True)
class ValueRules:
    """Exact rates the proposal is valued with (the Decimal twins of TriggerRules)."""

    short_term_rate: Decimal
    long_term_rate: Decimal
    cost_rate: Decimal  # round trip: sell and rebuy legs

    @classmethod
    def from_floats(cls, short: float, long: float, cost_rate: float) -> ValueRules:
        return cls(Decimal(repr(short)), Decimal(repr(long)), Decimal(repr(cost_rate)))


@dataclass(frozen=True, slots=True)
class HarvestProposal:
    """Sell these lots at `price`: exact amounts before rounding."""

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

    @property
    def loss(self) -> Decimal:
        return self.cost_basis - self.proceeds

    @property
    def net_benefit(self) -> Decimal:
        return self.tax_savings - self.cost


def propose(
    book: LotBook, crossing: Crossing, price: float, ts_ms: int, rules: ValueRules
) -> list[HarvestProposal]:
    """One proposal per (account, wallet) among the crossed lots, in a stable order."""
    lots = book.lots_at(crossing.rows).sort("account", "wallet", "lot_id")
    exact_price = Decimal(repr(price))
    day = day_of_ms(ts_ms)
    proposals = []
    for (account, wallet), group in lots.group_by(["account", "wallet"], maintain_order=True):
        proposals.append(
            _proposal(str(account), str(wallet), crossing.asset, group, exact_price, day, rules)
        )
    return proposals


def _proposal(
    account: str,
    wallet: str,
    asset: str,
    lots: pl.DataFrame,
    price: Decimal,
    day: int,
    rules: ValueRules,
) -> HarvestProposal:
    quantity = basis = proceeds = short = long = Decimal(0)
    for qty, cost, acquired in lots.select("quantity", "cost_basis_usd", "acquired_at").iter_rows():
        lot_proceeds = qty * price
        loss = cost - lot_proceeds
        if epoch_day(long_term_from(acquired.date())) <= day:
            long += loss
        else:
            short += loss
        quantity += qty
        basis += cost
        proceeds += lot_proceeds
    savings = rules.short_term_rate * short + rules.long_term_rate * long
    return HarvestProposal(
        account=account,
        wallet=wallet,
        asset=asset,
        lot_ids=tuple(lots["lot_id"].to_list()),
        quantity=quantity,
        price=price,
        cost_basis=basis,
        proceeds=proceeds,
        short_term_loss=short,
        long_term_loss=long,
        tax_savings=savings,
        cost=rules.cost_rate * proceeds,
    )


def to_alert(
    proposal: HarvestProposal,
    *,
    venue: str,
    symbol: str,
    tick_ts_ms: int,
    emitted_at: Callable[[], str],
) -> Alert:
    """The `hm.alert/1` message for a proposal; the id depends on content, not on time."""
    tick_ts = format_ts_ms(tick_ts_ms)
    price = plain(proposal.price)
    return Alert(
        alert_id=alert_id(
            "harvest",
            proposal.account,
            proposal.wallet,
            proposal.asset,
            ",".join(proposal.lot_ids),
            price,
            tick_ts,
        ),
        account=proposal.account,
        wallet=proposal.wallet,
        asset=proposal.asset,
        lot_ids=list(proposal.lot_ids),
        quantity=plain(proposal.quantity),
        price=price,
        cost_basis_usd=cents(proposal.cost_basis),
        proceeds_usd=cents(proposal.proceeds),
        loss_usd=cents(proposal.loss),
        short_term_loss_usd=cents(proposal.short_term_loss),
        long_term_loss_usd=cents(proposal.long_term_loss),
        tax_savings_usd=cents(proposal.tax_savings),
        cost_usd=cents(proposal.cost),
        net_benefit_usd=cents(proposal.net_benefit),
        venue=venue,
        symbol=symbol,
        tick_ts=tick_ts,
        emitted_at=emitted_at(),
    )


def wall_clock_iso() -> str:
    """Now, ISO 8601 UTC with milliseconds (emitted_at of live alerts)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
