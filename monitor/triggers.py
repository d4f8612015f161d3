"""Trigger prices: the price under which a lot is worth harvesting (ARCHITECTURE.md).

For a lot of quantity q and unit basis B, with tax rate r and round-trip cost rate c,
every harvest rule is monotone in the price p, so the lot has one trigger price:

    p <= B - min_loss_usd / q                     (loss of at least min_loss_usd)
    p <= B * (1 - min_loss_pct)                   (loss of at least min_loss_pct)
    p <= (r*q*B - m) / (q*(r + c))                (r*loss - c*proceeds >= m)

trigger = min of the three. float64 is fine here: the alert recomputes every amount
in Decimal from the lot's exact quantity and basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class TriggerRules:
    """The harvest thresholds and rates the trigger of every lot is computed from."""

    min_loss_usd: float
    min_loss_pct: float
    min_net_benefit_usd: float
    cost_rate: float  # c: fees + slippage, both legs, fraction of notional
    short_term_rate: float
    long_term_rate: float


def trigger_prices(qty: F64, unit_basis: F64, rate: F64, rules: TriggerRules) -> F64:
    """Vectorized trigger price per lot (may be <= 0: such a lot never triggers)."""
    by_loss = unit_basis - rules.min_loss_usd / qty
    by_pct = unit_basis * (1.0 - rules.min_loss_pct)
    denom = qty * (rate + rules.cost_rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_net = np.where(
            denom > 0,
            (rate * qty * unit_basis - rules.min_net_benefit_usd) / denom,
            -np.inf,
        )
    result: F64 = np.minimum(np.minimum(by_loss, by_pct), by_net)
    return result


def is_harvestable(
    q: float, unit_basis: float, rate: float, price: float, rules: TriggerRules
) -> bool:
    """The three rules evaluated directly at `price` (the reference the index must match)."""
    loss = q * (unit_basis - price)
    net = rate * loss - rules.cost_rate * q * price
    return (
        loss >= rules.min_loss_usd
        and loss >= rules.min_loss_pct * q * unit_basis
        and net >= rules.min_net_benefit_usd
    )


def curve_trigger_prices(
    qty: F64, unit_basis: F64, curve: tuple[F64, F64, F64], rules: TriggerRules
) -> F64:
    """Trigger per lot when a loss L is worth V(L), piecewise linear (the `ytd` model).

    `curve` = (starts, values, slopes) of monitor.tax.netting.ValueCurve. The net benefit
    V(q*(B - p)) - c*q*p falls as p rises (V never falls as the loss grows), so the lot
    still has one trigger: the highest p where it is at least m. On segment k, with
    L = q*(B - p) in [L_k, L_k+1): p <= (V_k + s_k*(q*B - L_k) - m) / (q*(s_k + c)).
    """
    starts, values, slopes = curve
    by_loss = unit_basis - rules.min_loss_usd / qty
    by_pct = unit_basis * (1.0 - rules.min_loss_pct)
    total = qty * unit_basis
    best = np.full(qty.shape, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(len(starts)):
            high = unit_basis - starts[k] / qty  # price where L = L_k
            low = unit_basis - starts[k + 1] / qty if k + 1 < len(starts) else -np.inf
            denom = qty * (slopes[k] + rules.cost_rate)
            level = values[k] + slopes[k] * (total - starts[k]) - rules.min_net_benefit_usd
            cand = np.where(denom > 0, level / denom, np.where(level >= 0, np.inf, -np.inf))
            best = np.maximum(best, np.where(cand >= low, np.minimum(cand, high), -np.inf))
    result: F64 = np.minimum(np.minimum(by_loss, by_pct), best)
    return result


def curve_value(curve: tuple[F64, F64, F64], loss: float) -> float:
    """V(loss) on a float curve (the reference the curve triggers must agree with)."""
    starts, values, slopes = curve
    k = int(np.searchsorted(starts, loss, side="right")) - 1 if loss > 0 else 0
    return float(values[k] + slopes[k] * (loss - starts[k]))


def long_term_from(acquired: date) -> date:
    """First day a lot acquired on `acquired` is long-term under US rules.

    The holding period starts the day after acquisition and must exceed one year
    (IRS Pub. 550; Rev. Rul. 66-7): bought 2025-03-01 -> long-term from 2026-03-02;
    bought 2024-02-29 -> long-term from 2025-03-01.
    """
    try:
        anniversary = acquired.replace(year=acquired.year + 1)
    except ValueError:  # 29 February with no 29 February next year
        anniversary = date(acquired.year + 1, 2, 28)
    return anniversary + timedelta(days=1)


def epoch_day(day: date) -> int:
    """Days since 1970-01-01 (the integer day the index compares)."""
    return (day - EPOCH).days


def day_of_ms(ts_ms: int) -> int:
    """UTC epoch day of an epoch-milliseconds timestamp."""
    return ts_ms // 86_400_000
