"""Lot order, step rounding, caps and partial takes (monitor.tax.selection) by hand.

Every expected value is worked out in the comment beside it, never read off the code.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from monitor.tax.selection import LotRow, Take, order_lots, round_down, sell_quantity, take

# At a price of 100:
#   lot  acquired    qty  basis  unit cost  loss (basis - qty*100)
#   A    2026-01-05  2    500    250        300
#   B    2026-01-03  1    400    400        300   (ties A on loss; acquired earlier)
#   C    2026-01-03  3    250    83.33      -50   (a gain)
#   D    2026-01-03  4    1000   250        600   (ties A on unit cost; acquired earlier)
#   E    2026-01-09  5    520    104        20
A = LotRow("A", date(2026, 1, 5), D(2), D(500))
B = LotRow("B", date(2026, 1, 3), D(1), D(400))
C = LotRow("C", date(2026, 1, 3), D(3), D(250))
Dl = LotRow("D", date(2026, 1, 3), D(4), D(1000))
E = LotRow("E", date(2026, 1, 9), D(5), D(520))
LOTS = [A, B, C, Dl, E]
PRICE = D(100)


def ids(lots: list[LotRow]) -> list[str]:
    return [lot.lot_id for lot in lots]


def test_max_loss_orders_by_loss_at_the_price_then_acquisition() -> None:
    """Losses D 600, B 300 (acquired 3 Jan), A 300 (5 Jan), E 20, C -50."""
    assert ids(order_lots(LOTS, "max_loss", PRICE)) == ["D", "B", "A", "E", "C"]


def test_max_loss_depends_on_the_price() -> None:
    """At 10: losses D 960, A 480, E 470, B 390, C 220."""
    assert ids(order_lots(LOTS, "max_loss", D(10))) == ["D", "A", "E", "B", "C"]


def test_hifo_orders_by_unit_cost_then_acquisition() -> None:
    """Unit costs B 400, D 250 (3 Jan), A 250 (5 Jan), E 104, C 83.33."""
    assert ids(order_lots(LOTS, "hifo", PRICE)) == ["B", "D", "A", "E", "C"]


def test_fifo_is_oldest_first_then_lot_id() -> None:
    assert ids(order_lots(LOTS, "fifo", PRICE)) == ["B", "C", "D", "A", "E"]


def test_lifo_is_newest_day_first_then_lot_id() -> None:
    assert ids(order_lots(LOTS, "lifo", PRICE)) == ["E", "A", "B", "C", "D"]


def test_ties_on_everything_but_the_id_go_by_lot_id() -> None:
    x = LotRow("x", date(2026, 1, 1), D(1), D(10))
    y = LotRow("y", date(2026, 1, 1), D(1), D(10))
    for how in ("max_loss", "hifo", "fifo", "lifo"):
        assert ids(order_lots([y, x], how, PRICE)) == ["x", "y"], how  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quantity", "step", "expected"),
    [
        (D("1.23456789"), D("0.001"), D("1.234")),  # down, not to nearest
        (D("0.9999"), D("0.001"), D("0.999")),
        (D("0.00012345"), D("0.00001"), D("0.00012")),  # a fractional step (BTC lots)
        (D("34"), D("4"), D("32")),
        (D("32"), D("4"), D("32")),  # already a multiple
        (D("0.75"), D("0.25"), D("0.75")),
        (D("1.23456789"), D("0"), D("1.23456789")),  # no step: unchanged
        (D("1.23456789"), D("-1"), D("1.23456789")),
    ],
)
def test_round_down_to_the_step(quantity: D, step: D, expected: D) -> None:
    assert round_down(quantity, step) == expected


def test_sell_quantity_whole_holding_under_the_cap() -> None:
    """2.5 held at 40,000 = 100,000 < cap 150,000: all of it, already a multiple of 0.0001."""
    assert sell_quantity(D("2.5"), D(40000), D("0.0001"), D(10), D(150000)) == (D("2.5"), "")


def test_sell_quantity_cap_then_step() -> None:
    """Cap 1,000 at 3: 333.33... units, down to the step 0.01: 333.33 (999.99 of notional)."""
    assert sell_quantity(D(500), D(3), D("0.01"), D(0), D(1000)) == (D("333.33"), "")


def test_sell_quantity_cap_to_the_finest_quantum_without_a_step() -> None:
    """Cap 1,000 at 3 with no step: 333.333333333333333333 (18 places, rounded down)."""
    quantity, reason = sell_quantity(D(500), D(3), D(0), D(0), D(1000))
    assert (quantity, reason) == (D("333.333333333333333333"), "")


def test_sell_quantity_no_cap_when_max_sell_is_zero() -> None:
    assert sell_quantity(D(34), D(100), D(0), D(0), D(0)) == (D(34), "")


def test_sell_quantity_a_cap_of_one_dollar_still_caps() -> None:
    """Cap 1 at 100: 0.01 units, not the whole unit held (any cap over 0 applies)."""
    assert sell_quantity(D(1), D(100), D(0), D(0), D(1)) == (D("0.01"), "")
    assert sell_quantity(D(1), D(100), D(0), D(0), D("0.5")) == (D("0.005"), "")


def test_sell_quantity_exactly_at_the_cap_is_not_trimmed() -> None:
    """2 at 500 = 1,000 = the cap: all 2 units."""
    assert sell_quantity(D(2), D(500), D("0.5"), D(0), D(1000)) == (D(2), "")


def test_sell_quantity_below_one_step() -> None:
    assert sell_quantity(D("0.00009"), D(60000), D("0.0001"), D(0), D(0)) == (
        D(0),
        "below_step_size",
    )


def test_min_notional_applies_to_the_quantity_sent_after_the_step() -> None:
    """0.00019 BTC at 60,000 is 11.40 held, over a min notional of 10; the step 0.0001
    leaves 0.0001 to send: 6.00 < 10, so nothing can be sold."""
    assert sell_quantity(D("0.00019"), D(60000), D("0.0001"), D(10), D(0)) == (
        D(0),
        "below_min_notional",
    )


def test_min_notional_is_inclusive() -> None:
    """0.0002 at 50,000 = 10.00, exactly the venue's minimum: sellable."""
    assert sell_quantity(D("0.00025"), D(50000), D("0.0001"), D(10), D(0)) == (D("0.0002"), "")


def test_min_notional_applies_after_the_cap() -> None:
    """Cap 5 at 100: 0.05 units (5.00) < min notional 10, though the holding is worth 300."""
    assert sell_quantity(D(3), D(100), D("0.01"), D(10), D(5)) == (D(0), "below_min_notional")


def test_take_whole_lots_then_a_pro_rata_part_of_the_last() -> None:
    """7 units along D (4), B (1), A (2), E (5): D, B and A whole (7 = 4 + 1 + 2), E untouched.
    5 units: D whole, then 1 of B's 1: B whole too. 6.5 units: D, B, then 1.5 of A's 2
    with basis 500 * 1.5 / 2 = 375."""
    ordered = [Dl, B, A, E]
    assert take(ordered, D(7)) == [Take(Dl, D(4), D(1000)), Take(B, D(1), D(400)),
                                   Take(A, D(2), D(500))]  # fmt: skip
    assert take(ordered, D(5)) == [Take(Dl, D(4), D(1000)), Take(B, D(1), D(400))]
    assert take(ordered, D("6.5")) == [
        Take(Dl, D(4), D(1000)),
        Take(B, D(1), D(400)),
        Take(A, D("1.5"), D(375)),
    ]


def test_take_a_third_of_a_lot_rounds_its_basis_to_18_places() -> None:
    """1 of 3 units with a basis of 100: 33.333333333333333333 (18 places)."""
    lot = LotRow("T", date(2026, 1, 1), D(3), D(100))
    (t,) = take([lot], D(1))
    assert (t.quantity, t.cost_basis) == (D(1), D("33.333333333333333333"))
    assert str(t.cost_basis) == "33.333333333333333333"


def test_take_never_more_than_is_held() -> None:
    assert take([B, C], D(100)) == [Take(B, D(1), D(400)), Take(C, D(3), D(250))]


def test_take_nothing() -> None:
    assert take([B, C], D(0)) == []
