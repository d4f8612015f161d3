"""From an alert to the intent that carries it out (or the reason there is none).

The alert's `plan` (monitor/plan.py) says which lots to sell, how much, and the rebuy.
Alerts without a plan (older producers) sell their lots in full and rebuy by
`[harvest] rebuy`. The quantity is rounded down to the venue's step, trimming the last
lots of the plan, so the intent never sells more than the lots it reserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from monitor.alerts.schema import Alert
from monitor.execute.idempotency import intent_id
from monitor.execute.venue import MarketRules
from monitor.ledger.intents import Intent
from monitor.settings import Settings

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Skip:
    """An alert the executor does not act on, and why (no intent is written)."""

    reason: str


def parse_time(text: str) -> datetime:
    """An alert timestamp (ISO 8601, `Z`) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def screen(alert: Alert, settings: Settings, *, long_term_exempt: bool = False) -> Skip | None:
    """Alerts that never become intents: other kinds, other accounts, empty plans, and
    harvests that are not one: a sale netting to a gain (short plus long term, long left
    out where it is tax-free) or worth nothing."""
    if alert.kind != "harvest":
        return Skip(f"kind {alert.kind} is not traded")
    counted = Decimal(alert.short_term_loss_usd) + (
        ZERO if long_term_exempt else Decimal(alert.long_term_loss_usd)
    )
    if counted <= 0:
        return Skip(f"the sale realizes a net gain ({-counted:f}), not a loss")
    if Decimal(alert.tax_savings_usd) <= 0:
        return Skip(f"the harvest is worth {alert.tax_savings_usd}, nothing to gain")
    accounts = settings.execution.accounts
    if accounts and alert.account not in accounts:
        return Skip(f"account {alert.account} is not in [execution] accounts")
    if alert.plan is not None and (not alert.plan.lots or Decimal(alert.plan.sell_quantity) <= 0):
        return Skip("the plan sells nothing")
    return None


def planned_lots(alert: Alert, open_quantity: dict[str, Decimal]) -> list[tuple[str, Decimal]]:
    """(lot_id, units) in sell order: the plan's, or each alerted lot in full."""
    if alert.plan is not None:
        return [(lot.lot_id, Decimal(lot.quantity)) for lot in alert.plan.lots]
    return [(lot_id, open_quantity.get(lot_id, ZERO)) for lot_id in alert.lot_ids]


def trim(lots: list[tuple[str, Decimal]], quantity: Decimal) -> list[tuple[str, Decimal]]:
    """The first `quantity` units of the plan (its last lots shortened or dropped)."""
    out: list[tuple[str, Decimal]] = []
    left = quantity
    for lot_id, units in lots:
        if left <= 0:
            break
        take = min(units, left)
        out.append((lot_id, take))
        left -= take
    return out


def rebuy_of(alert: Alert, settings: Settings) -> tuple[str, datetime]:
    """(asset to buy back or '', earliest time) from the plan, else from `[harvest]`."""
    tick = parse_time(alert.tick_ts)
    if alert.plan is not None:
        rebuy = alert.plan.rebuy
        if rebuy.mode == "none":
            return "", tick
        asset = alert.asset if rebuy.mode == "same" else rebuy.asset
        when = tick
        if rebuy.not_before:
            day = datetime.fromisoformat(rebuy.not_before).replace(tzinfo=UTC)
            when = max(when, day)
        return asset, when
    h = settings.harvest
    if h.rebuy == "none":
        return "", tick
    asset = alert.asset if h.rebuy == "same" else h.replacements.get(alert.asset, "")
    return asset, tick + timedelta(days=h.rebuy_delay_days)


def build_intent(
    alert: Alert,
    settings: Settings,
    rules: MarketRules,
    open_quantity: dict[str, Decimal],
) -> tuple[Intent, str]:
    """The intent for an alert, and why it must not trade ('' when it may)."""
    ex = settings.execution
    lots = planned_lots(alert, open_quantity)
    wanted = sum((q for _, q in lots), ZERO)
    if alert.plan is not None:
        wanted = min(wanted, Decimal(alert.plan.sell_quantity))
    quantity = rules.round_amount(wanted)
    lots = trim(lots, quantity)
    price = Decimal(alert.price)
    rebuy_asset, rebuy_after = rebuy_of(alert, settings)
    disallowed = Decimal(alert.plan.disallowed_loss_usd) if alert.plan is not None else ZERO
    intent = Intent(
        intent_id=intent_id(alert.alert_id),
        alert_id=alert.alert_id,
        mode="live" if ex.mode == "live" else "paper",
        account=alert.account,
        wallet=alert.wallet,
        asset=alert.asset,
        venue=ex.venue if ex.mode == "live" else "paper",
        symbol=f"{alert.asset}/{ex.quote}",
        lots=tuple(lots),
        quantity=quantity,
        price=price,
        rebuy_asset=rebuy_asset,
        rebuy_after=rebuy_after,
        disallowed_loss_usd=disallowed,
    )
    reason = rules.refusal(quantity, price / ex.quote_usd)
    if not reason and alert.plan is None and any(q <= 0 for _, q in lots):
        reason = "an alerted lot is no longer open"
    if (
        not reason
        and alert.plan is not None
        and rebuy_asset == ""
        and alert.plan.rebuy.mode == "replacement"
    ):
        reason = "the plan's rebuy names no replacement asset"
    return intent, reason
