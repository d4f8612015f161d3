"""Rendering proposals as `hm.alert/1` messages: harvest, deadline and wash-warning alerts.

Money is rounded to cents here and only here; quantities and prices are exact decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from monitor.alerts.schema import Alert, Plan, PlanLot, Rebuy, alert_id, cents, plain
from monitor.book import LotBook
from monitor.plan import HarvestProposal, Planner
from monitor.tax.rules import ZERO
from monitor.tax.windows import Acquisition
from streams.ticks import format_ts_ms


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def plan_of(proposal: HarvestProposal, planner: Planner) -> Plan:
    """The `plan` object of an alert."""
    p = proposal
    return Plan(
        jurisdiction=planner.tax.name,
        value_model=planner.tax.value_model,
        lot_selection=p.lot_selection,
        lots=[
            PlanLot(
                lot_id=lot.lot_id,
                quantity=plain(lot.quantity),
                acquired_on=lot.acquired.isoformat(),
                term=lot.term,
                cost_basis_usd=cents(lot.cost_basis),
                proceeds_usd=cents(lot.proceeds),
                loss_usd=cents(lot.loss),
            )
            for lot in p.lots
        ],
        sell_quantity=plain(p.quantity),
        legs=p.legs,
        rebuy=Rebuy(
            mode=p.rebuy.mode,
            asset=p.rebuy.asset,
            not_before=_day(p.rebuy.not_before),
            notional_usd=cents(p.rebuy.notional),
        ),
        disallowed_loss_usd=cents(p.disallowed.amount),
        disallowed_reason=p.disallowed.reason,
        allowed_from=_day(p.disallowed.allowed_from),
        permanent_usd=cents(p.permanent),
        deferral_usd=cents(p.deferral),
        deadline=_day(p.deadline),
        do_not_buy_until=_day(p.do_not_buy_until),
        warnings=list(p.warnings),
    )


def to_alert(
    proposal: HarvestProposal,
    *,
    venue: str,
    symbol: str,
    tick_ts_ms: int,
    emitted_at: Callable[[], str],
    planner: Planner | None = None,
) -> Alert:
    """The `hm.alert/1` message for a proposal; the id depends on content, not on time."""
    tick_ts = format_ts_ms(tick_ts_ms)
    price = plain(proposal.price)
    return Alert(
        alert_id=alert_id(
            proposal.kind,
            proposal.account,
            proposal.wallet,
            proposal.asset,
            ",".join(proposal.lot_ids),
            price,
            tick_ts,
        ),
        kind=proposal.kind,
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
        plan=plan_of(proposal, planner) if planner is not None else None,
    )


def acquisition_alerts(
    book: LotBook,
    planner: Planner,
    acquisition: Acquisition,
    *,
    ts_ms: int,
    emitted_at: Callable[[], str],
    venue: str = "",
) -> list[Alert]:
    """Record a buy (the executor's hook) and warn when it falls in a do-not-buy window.

    The warning's loss_usd is the harvested loss the buy puts at risk: the harvest's loss
    in proportion to the quantity bought (at most all of it).
    """
    entry = book.record_acquisition(acquisition)
    if entry is None:
        return []
    share = min(Decimal(1), acquisition.quantity / entry.quantity) if entry.quantity else ZERO
    at_risk = entry.loss_usd * share
    tick_ts = format_ts_ms(ts_ms)
    unit = acquisition.cost_usd / acquisition.quantity
    pack = planner.tax.pack
    reason = pack.rebuy_warning or "inside the pack's waiting period"
    message = (
        f"bought {acquisition.asset} on {acquisition.day.isoformat()} within the do-not-buy "
        f"window of the harvest of {entry.sold_on.isoformat()} (until "
        f"{entry.until.isoformat()}): {reason}"
    )
    lot_ids = [acquisition.lot_id] if acquisition.lot_id else []
    return [
        Alert(
            alert_id=alert_id(
                "wash_warning",
                acquisition.account,
                acquisition.wallet,
                acquisition.asset,
                ",".join(lot_ids),
                plain(acquisition.quantity),
                acquisition.day.isoformat(),
            ),
            kind="wash_warning",
            account=acquisition.account,
            wallet=acquisition.wallet,
            asset=acquisition.asset,
            lot_ids=lot_ids,
            quantity=plain(acquisition.quantity),
            price=plain(unit),
            cost_basis_usd=cents(acquisition.cost_usd),
            proceeds_usd="0.00",
            loss_usd=cents(at_risk),
            short_term_loss_usd="0.00",
            long_term_loss_usd="0.00",
            tax_savings_usd="0.00",
            cost_usd="0.00",
            net_benefit_usd="0.00",
            venue=venue,
            symbol="",
            tick_ts=tick_ts,
            emitted_at=emitted_at(),
            plan=Plan(
                jurisdiction=planner.tax.name,
                value_model=planner.tax.value_model,
                lot_selection="",
                lots=[],
                sell_quantity="0",
                legs=0,
                rebuy=Rebuy(mode="none"),
                disallowed_loss_usd=cents(at_risk),
                disallowed_reason="wash_warning",
                do_not_buy_until=entry.until.isoformat(),
                warnings=[message],
            ),
        )
    ]


def wall_clock_iso() -> str:
    """Now, ISO 8601 UTC with milliseconds (emitted_at of live alerts)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
