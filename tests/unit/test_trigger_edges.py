"""Trigger edges by hand: each rule's boundary is inclusive, the costs reduce the net
benefit, epoch days, and the value curve's flat (zero-slope, zero-cost) segments.

All amounts are exact in binary floating point (powers of two and small integers), so
"exactly at the boundary" means exactly.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from monitor.triggers import (
    TriggerRules,
    curve_trigger_prices,
    curve_value,
    day_of_ms,
    epoch_day,
    is_harvestable,
    trigger_prices,
)

DAY_MS = 86_400_000


def rules(
    min_loss: float = 0.0, pct: float = 0.0, net: float = 0.0, cost: float = 0.0
) -> TriggerRules:
    return TriggerRules(min_loss, pct, net, cost, 0.5, 0.25)


@pytest.mark.parametrize(
    ("price", "r", "expected"),
    [
        # q = 1, B = 1,000. A loss of 100 against min_loss_usd 100: harvestable; 99.5: not.
        (900.0, rules(min_loss=100.0), True),
        (900.5, rules(min_loss=100.0), False),
        # min_loss_pct 0.25: a loss of 250 is exactly 25% of the basis; 249 is not.
        (750.0, rules(pct=0.25), True),
        (751.0, rules(pct=0.25), False),
        # rate 0.5, cost 0.125: at 800 the loss is 200, worth 100, and the cost 0.125 * 800
        # is 100: a net benefit of exactly 0.
        (800.0, rules(cost=0.125), True),
        (800.0, rules(cost=0.125, net=0.5), False),
        # Without the cost the same sale is worth 100 >= 0.5.
        (800.0, rules(net=0.5), True),
        # At 1,000 (no loss) with every threshold 0, all three rules hold as 0 >= 0.
        (1000.0, rules(), True),
        (1000.5, rules(), False),  # a gain: net = 0.5 * -0.5 < 0
    ],
)
def test_is_harvestable_boundaries(price: float, r: TriggerRules, expected: bool) -> None:
    assert is_harvestable(1.0, 1000.0, 0.5, price, r) is expected


def test_is_harvestable_scales_with_quantity() -> None:
    """q = 4, B = 250 (basis 1,000): at 225 the loss is 4 * 25 = 100 and the basis 1,000,
    so min_loss 100 and 10% both hold exactly; at 226 the loss is 96."""
    r = rules(min_loss=100.0, pct=0.1)
    assert is_harvestable(4.0, 250.0, 0.5, 225.0, r)
    assert not is_harvestable(4.0, 250.0, 0.5, 226.0, r)


def test_epoch_days() -> None:
    """56 years from 1970 to 2026 with 14 leap days (1972 ... 2024): 56 * 365 + 14."""
    assert epoch_day(date(1970, 1, 1)) == 0
    assert epoch_day(date(1970, 1, 2)) == 1
    assert epoch_day(date(2026, 1, 1)) == 20_454
    assert epoch_day(date(1969, 12, 31)) == -1


def test_day_of_ms_is_the_utc_day() -> None:
    start = 20_454 * DAY_MS  # 2026-01-01T00:00:00Z
    assert day_of_ms(start) == 20_454
    assert day_of_ms(start - 1) == 20_453  # 2025-12-31T23:59:59.999Z
    assert day_of_ms(start + DAY_MS - 1) == 20_454
    assert day_of_ms(-1) == -1  # floor, not truncation toward zero


# 0.5 a dollar for the first 1,000 of loss, then nothing (a capped value: the ytd model
# once the offset is used up).
CAPPED = (np.array([0.0, 1000.0]), np.array([0.0, 500.0]), np.array([0.5, 0.0]))


def test_curve_value_by_segment() -> None:
    assert curve_value(CAPPED, 0.0) == 0.0
    assert curve_value(CAPPED, 1.0) == 0.5
    assert curve_value(CAPPED, 600.0) == 300.0
    assert curve_value(CAPPED, 1000.0) == 500.0
    assert curve_value(CAPPED, 3000.0) == 500.0
    assert curve_value(CAPPED, -200.0) == -100.0  # a gain on the first segment's slope


def test_curve_value_at_a_jump_is_the_right_limit() -> None:
    """de's threshold is a jump: 0.5 a dollar up to 1,000 (500), then 600 flat. At exactly
    1,000 the value is the right limit, 600 (ValueCurve: `values` are right limits)."""
    jump = (np.array([0.0, 1000.0]), np.array([0.0, 600.0]), np.array([0.5, 0.0]))
    assert curve_value(jump, 999.0) == 499.5
    assert curve_value(jump, 1000.0) == 600.0


def test_curve_value_with_a_breakpoint_under_a_dollar() -> None:
    """Breakpoint at 0.5: 0.5 a dollar to 0.25, then flat. At 0.75: 0.25 (not 0.375)."""
    tiny = (np.array([0.0, 0.5]), np.array([0.0, 0.25]), np.array([0.5, 0.0]))
    assert curve_value(tiny, 0.75) == 0.25


def capped_trigger(net: float) -> float:
    """10 units with a basis of 40,000 (B = 4,000), no cost, no loss rules."""
    r = rules(net=net)
    return float(curve_trigger_prices(np.array([10.0]), np.array([4000.0]), CAPPED, r)[0])


# A flat segment with no cost divides by zero (and 0 by 0) in the vectorized formula; the
# result must be the limit, without a RuntimeWarning on every book rebuild.
@pytest.mark.filterwarnings("error")
def test_curve_trigger_on_the_first_segment() -> None:
    """m = 250: 0.5 * 10 * (4,000 - p) >= 250 -> p <= 3,950 (a loss of 500)."""
    assert capped_trigger(250.0) == 3950.0


@pytest.mark.filterwarnings("error")
def test_curve_trigger_when_the_flat_segment_is_worth_enough() -> None:
    """m = 500: the value reaches 500 at a loss of 1,000 (p = 3,900) and stays there, so
    every price up to 3,900 qualifies: the trigger is 3,900."""
    assert capped_trigger(500.0) == 3900.0


@pytest.mark.filterwarnings("error")
def test_curve_trigger_never_when_the_cap_is_worth_less_than_m() -> None:
    """m = 504: the value never exceeds 500, whatever the loss: no trigger price."""
    assert capped_trigger(504.0) == -np.inf


# de's threshold as a value curve: 0.5 a dollar up to a loss of 1,000 (worth 500), then a
# jump to 600, flat after. 10 units, B = 4,000, no cost: L = 10 * (4,000 - p).
JUMP = (np.array([0.0, 1000.0]), np.array([0.0, 600.0]), np.array([0.5, 0.0]))


def jump_trigger(net: float) -> float:
    r = rules(net=net)
    return float(curve_trigger_prices(np.array([10.0]), np.array([4000.0]), JUMP, r)[0])


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("net", [599.5, 600.0])
def test_curve_trigger_at_the_jump(net: float) -> None:
    """m = 599.5 or 600: below the jump the value tops out at 500 (< m); at a loss of
    1,000 (p = 3,900) it is 600 >= m, and stays: the trigger is 3,900."""
    assert jump_trigger(net) == 3900.0


@pytest.mark.filterwarnings("error")
def test_curve_trigger_past_the_jump_never() -> None:
    """m = 600.5: 600 is the most any loss is worth: no trigger price."""
    assert jump_trigger(600.5) == -np.inf


@pytest.mark.filterwarnings("error")
def test_no_rate_and_no_cost_never_clear_a_positive_net_minimum() -> None:
    """Rate 0 and cost 0: a sale is worth 0 whatever the price, under m = 25: no price
    (-inf, not nan: a nan would sort anywhere in the trigger index), and the x/0 of the
    vectorized formula raises no RuntimeWarning."""
    r = TriggerRules(0.0, 0.0, 25.0, 0.0, 0.0, 0.0)
    got = trigger_prices(np.array([1.0, 2.0]), np.array([1000.0, 10.0]), np.zeros(2), r)
    assert got.tolist() == [-np.inf, -np.inf]


@pytest.mark.xfail(
    strict=True,
    reason="bug: with rate 0, cost 0 and min_net_benefit_usd 0, trigger_prices gives -inf "
    "(never) while is_harvestable, its reference, says 0 >= 0 holds at any price up to the "
    "basis, and curve_trigger_prices gives the basis",
)
@pytest.mark.filterwarnings("error")
def test_no_rate_no_cost_and_a_zero_net_minimum_agree_with_the_direct_rules() -> None:
    """m = 0: the net rule holds everywhere (0 >= 0), so the loss rules (0 and 0%) bind:
    the trigger is the unit basis, 1,000 and 10, as is_harvestable says (harvestable at
    1,000, not at 1,000.5)."""
    r = TriggerRules(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert is_harvestable(1.0, 1000.0, 0.0, 1000.0, r)
    assert not is_harvestable(1.0, 1000.0, 0.0, 1000.5, r)
    got = trigger_prices(np.array([1.0, 2.0]), np.array([1000.0, 10.0]), np.zeros(2), r)
    assert got.tolist() == [1000.0, 10.0]


def test_curve_trigger_on_the_middle_of_three_segments() -> None:
    """0.5 a dollar to 1,000 (500), 0.25 to 2,000 (750), then 0.125. m = 625: the value
    reaches 625 at a loss of 1,500 (500 + 0.25 * 500), p = 4,000 - 150 = 3,850. The first
    segment tops out at 500 and the third starts at 750 (p = 3,800): neither binds."""
    curve = (
        np.array([0.0, 1000.0, 2000.0]),
        np.array([0.0, 500.0, 750.0]),
        np.array([0.5, 0.25, 0.125]),
    )
    r = rules(net=625.0)
    got = curve_trigger_prices(np.array([10.0]), np.array([4000.0]), curve, r)
    assert got.tolist() == [3850.0]
