"""Trigger math and holding periods, by hand-computed cases and a property."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.triggers import (
    TriggerRules,
    curve_trigger_prices,
    curve_value,
    is_harvestable,
    long_term_from,
    trigger_prices,
)

# c = 2 * (0.001 + 5 / 10000) = 0.003
RULES = TriggerRules(
    min_loss_usd=100.0,
    min_loss_pct=0.05,
    min_net_benefit_usd=25.0,
    cost_rate=0.003,
    short_term_rate=0.37,
    long_term_rate=0.20,
)


def one(q: float, basis_total: float, rate: float, rules: TriggerRules = RULES) -> float:
    return float(
        trigger_prices(np.array([q]), np.array([basis_total / q]), np.array([rate]), rules)[0]
    )


@pytest.mark.parametrize(
    ("q", "basis", "rate", "expected", "binding"),
    [
        # B = 50,000: by_loss 49,950; by_pct 47,500; by_net (18,500*2 - 25)/(2*0.373) = 49,564.34
        (2.0, 100_000.0, 0.37, 47_500.0, "pct"),
        # B = 1,000 long-term: by_loss 900; by_pct 950; by_net (200 - 25)/0.203 = 862.0690
        (1.0, 1_000.0, 0.20, 175.0 / 0.203, "net"),
        # B = 10, 50 units: by_loss 10 - 2 = 8; by_pct 9.5; by_net (0.37*500-25)/(50*0.373) = 8.58
        (50.0, 500.0, 0.37, 8.0, "loss"),
    ],
)
def test_trigger_is_the_tightest_rule(
    q: float, basis: float, rate: float, expected: float, binding: str
) -> None:
    assert one(q, basis, rate) == pytest.approx(expected, rel=1e-12), binding


def test_lot_too_small_to_ever_clear_min_loss_never_triggers() -> None:
    # basis $80 < min_loss_usd $100: even at a price of 0 the loss is below the minimum.
    assert one(1.0, 80.0, 0.37) < 0


def test_zero_rates_and_costs_make_net_rule_unreachable() -> None:
    rules = TriggerRules(0.0, 0.0, 25.0, 0.0, 0.0, 0.0)
    assert one(1.0, 1_000.0, 0.0, rules) == -np.inf


@pytest.mark.parametrize(
    ("acquired", "first_long_term_day"),
    [
        (date(2025, 3, 1), date(2026, 3, 2)),  # the reference example
        (date(2024, 2, 29), date(2025, 3, 1)),  # leap day, no 29 Feb next year
        (date(2023, 2, 28), date(2024, 2, 29)),  # into a leap year
        (date(2025, 12, 31), date(2027, 1, 1)),  # year end
    ],
)
def test_long_term_from_day_after_anniversary(acquired: date, first_long_term_day: date) -> None:
    assert long_term_from(acquired) == first_long_term_day


@settings(max_examples=300, deadline=None)
@given(
    q=st.floats(0.001, 1_000.0),
    unit_basis=st.floats(0.01, 100_000.0),
    rate=st.sampled_from([0.20, 0.37]),
    ratio=st.floats(0.01, 1.5),
)
def test_trigger_agrees_with_direct_rules(
    q: float, unit_basis: float, rate: float, ratio: float
) -> None:
    """At any price (away from float ties) trigger >= price exactly when the rules hold."""
    price = unit_basis * ratio
    trigger = float(
        trigger_prices(np.array([q]), np.array([unit_basis]), np.array([rate]), RULES)[0]
    )
    if abs(trigger - price) <= 1e-9 * max(1.0, price):
        return  # a tie within float error: either answer is acceptable
    assert (trigger >= price) == is_harvestable(q, unit_basis, rate, price, RULES)


# A value curve: 0.37 a dollar for the first 1,000 of loss, then 0.185 (the ytd model).
CURVE = (np.array([0.0, 1000.0]), np.array([0.0, 370.0]), np.array([0.37, 0.185]))
NET_ONLY = TriggerRules(0.0, 0.0, 25.0, 0.003, 0.37, 0.20)


def curve_one(q: float, basis_total: float, rules: TriggerRules) -> float:
    qty, unit = np.array([q]), np.array([basis_total / q])
    return float(curve_trigger_prices(qty, unit, CURVE, rules)[0])


def test_curve_trigger_inside_the_first_segment_is_the_flat_formula() -> None:
    # (0.37 * 40,000 - 25) / (10 * 0.373) = 3,961.126: a loss of 388.7, under 1,000.
    assert curve_one(10.0, 40_000.0, NET_ONLY) == pytest.approx(14_775 / 3.73, rel=1e-12)


def test_curve_trigger_in_a_later_segment() -> None:
    """m = 500: the first segment would need p = 3,833.78, a loss of 1,662 (past 1,000).
    Second segment: (370 + 0.185 * (40,000 - 1,000) - 500) / (10 * (0.185 + 0.003))
    = 7,085 / 1.88 = 3,768.62 (loss 2,313.8: 370 + 0.185 * 1,313.8 - 113.06 = 500)."""
    rules = TriggerRules(0.0, 0.0, 500.0, 0.003, 0.37, 0.20)
    trigger = curve_one(10.0, 40_000.0, rules)
    assert trigger == pytest.approx(7_085 / 1.88, rel=1e-12)
    loss = 10 * (4_000 - trigger)
    assert curve_value(CURVE, loss) - 0.003 * 10 * trigger == pytest.approx(500.0)


def test_curve_trigger_keeps_the_loss_rules() -> None:
    rules = TriggerRules(100.0, 0.05, 25.0, 0.003, 0.37, 0.20)
    assert curve_one(10.0, 40_000.0, rules) == pytest.approx(3_800.0)  # the 5% rule binds
