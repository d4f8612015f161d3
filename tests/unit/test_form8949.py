"""Form 8949 rows, totals and CSV by hand, from the IRS instructions for Form 8949.

The rules pinned here (Instructions for Form 8949, 2025; digital assets):
- Part I is short-term, Part II long-term. Digital assets go in box G (short) / J (long)
  when the 1099-DA reported basis, H / K when it reported proceeds only, I / L without a
  1099-DA.
- A wash-sale loss that is not allowed: code W in column (f), the disallowed amount as a
  positive adjustment in column (g); column (h) = (d) - (e) + (g).
- Amounts are rounded to the cent once per row, half up (0.125 -> 0.13, not the banker's
  0.12), and a box's totals (line 2 / line 4) are the sums of its rounded rows.
Every expected figure below is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal as D

import pytest

from monitor.ledger.form8949 import Row, Totals, rows_of, to_row, totals_of, write_csv
from monitor.tax.disposal import Disposal

# A short-term wash sale: 0.50 BTC bought 10 Jan, sold 15 Mar 2026.
# (d) 1,000.125 -> 1,000.13 (half up); (e) 1,500.004 -> 1,500.00; (g) 200.005 -> 200.01.
# (h) = 1,000.13 - 1,500.00 + 200.01 = -299.86.
WASH = Disposal(
    "LOT-W", "acct-1", "cold", "BTC", D("0.50"), date(2026, 1, 10), date(2026, 3, 15),
    D("1000.125"), D("1500.004"), "short", harvest=True, alert_id="AL-7",
    disallowed_loss_usd=D("200.005"), reason="wash_sale",
)  # fmt: skip

# A long-term sale without adjustment: 10 ETH bought 2024, sold 2 Jun 2026.
# (d) 2,500.555 -> 2,500.56; (e) 4,000.994 -> 4,000.99; (h) = 2,500.56 - 4,000.99 = -1,500.43.
LONG = Disposal(
    "LOT-L", "acct-2", "hot", "ETH", D("10.000"), date(2024, 2, 29), date(2026, 6, 2),
    D("2500.555"), D("4000.994"), "long", harvest=True, alert_id="AL-8",
)  # fmt: skip


def test_wash_sale_row_has_code_w_and_a_positive_adjustment_added_in_h() -> None:
    row = to_row(WASH, "none")
    assert row == Row(
        part="I",
        box="I",
        description="0.5 BTC",
        date_acquired="01/10/2026",
        date_sold="03/15/2026",
        proceeds=D("1000.13"),
        cost_basis=D("1500.00"),
        code="W",
        adjustment=D("200.01"),
        gain_or_loss=D("-299.86"),
        account="acct-1",
        wallet="cold",
        lot_id="LOT-W",
        alert_id="AL-7",
        reason="wash_sale",
    )


def test_row_without_adjustment_has_no_code_and_h_is_d_minus_e() -> None:
    row = to_row(LONG)  # the default: no 1099-DA, so box L for long-term
    assert (row.part, row.box, row.description) == ("II", "L", "10 ETH")
    assert (row.date_acquired, row.date_sold) == ("02/29/2024", "06/02/2026")
    assert (row.proceeds, row.cost_basis, row.code, row.adjustment) == (
        D("2500.56"),
        D("4000.99"),
        "",
        D("0.00"),
    )
    assert row.gain_or_loss == D("-1500.43")


@pytest.mark.parametrize(
    ("reporting", "short_box", "long_box"),
    [("basis", "G", "J"), ("proceeds", "H", "K"), ("none", "I", "L")],
)
def test_digital_asset_boxes_by_what_the_1099_da_reported(
    reporting: str, short_box: str, long_box: str
) -> None:
    rows = rows_of([LONG, WASH], reporting)  # type: ignore[arg-type]
    assert [(r.part, r.box) for r in rows] == [("I", short_box), ("II", long_box)]


def test_half_up_rounding_of_each_column() -> None:
    """0.125 -> 0.13 and 0.005 -> 0.01 (half up; half even would give 0.12 and 0.00);
    0.124999 -> 0.12. (h) = 0.13 - 0.12 + 0.01 = 0.02."""
    d = Disposal(
        "R", "a", "w", "DOGE", D("1"), date(2026, 1, 1), date(2026, 1, 2),
        D("0.125"), D("0.124999"), "short", disallowed_loss_usd=D("0.005"),
    )  # fmt: skip
    row = to_row(d)
    assert (row.proceeds, row.cost_basis, row.adjustment, row.gain_or_loss) == (
        D("0.13"),
        D("0.12"),
        D("0.01"),
        D("0.02"),
    )
    assert row.code == "W"


def test_a_disallowed_loss_under_half_a_cent_rounds_to_no_adjustment() -> None:
    """0.004 rounds to 0.00: nothing to report in (g), so no code W either."""
    d = Disposal(
        "R", "a", "w", "BTC", D("1"), date(2026, 1, 1), date(2026, 1, 2),
        D("10"), D("20"), "short", disallowed_loss_usd=D("0.004"),
    )  # fmt: skip
    row = to_row(d)
    assert (row.code, row.adjustment, row.gain_or_loss) == ("", D("0.00"), D("-10.00"))


def _sale(lot: str, sold: date, term: str, proceeds: str = "100", basis: str = "150") -> Disposal:
    return Disposal(
        lot, "a", "w", "SOL", D(1), date(2023, 1, 1), sold, D(proceeds), D(basis),
        "short" if term == "short" else "long",
    )  # fmt: skip


def test_rows_are_part_i_then_part_ii_each_by_date_sold_then_lot() -> None:
    given = [
        _sale("L-b", date(2026, 2, 1), "long"),
        _sale("S-z", date(2026, 5, 1), "short"),
        _sale("L-a", date(2026, 2, 1), "long"),
        _sale("S-y", date(2026, 3, 1), "short"),
        _sale("L-c", date(2026, 1, 15), "long"),
        _sale("S-x", date(2026, 5, 1), "short"),
    ]
    assert [r.lot_id for r in rows_of(given)] == ["S-y", "S-x", "S-z", "L-c", "L-a", "L-b"]
    assert [r.part for r in rows_of(given)] == ["I", "I", "I", "II", "II", "II"]


def test_totals_are_the_sums_of_the_rounded_rows_per_box_in_form_order() -> None:
    """Box I: three rows of 10.004 - 20.004 (10.00 - 20.00 = -10.00 each) and WASH.
    proceeds 3 * 10.00 + 1,000.13 = 1,030.13; basis 3 * 20.00 + 1,500.00 = 1,560.00;
    adjustment 200.01; (h) -30.00 - 299.86 = -329.86 = 1,030.13 - 1,560.00 + 200.01.
    (The exact sums would give 1,030.137 -> 1,030.14 and 1,560.016 -> 1,560.02.)
    Box L: LONG alone."""
    small = [
        Disposal(f"T{i}", "a", "w", "BTC", D(1), date(2026, 1, 1), date(2026, 4, 1),
                 D("10.004"), D("20.004"), "short")
        for i in range(3)
    ]  # fmt: skip
    totals = totals_of(rows_of([LONG, *small, WASH]))
    assert totals == [
        Totals("I", 4, D("1030.13"), D("1560.00"), D("200.01"), D("-329.86")),
        Totals("L", 1, D("2500.56"), D("4000.99"), D("0.00"), D("-1500.43")),
    ]


def test_totals_of_no_rows_is_no_boxes() -> None:
    assert totals_of([]) == []


def test_csv_is_the_header_and_one_line_per_row_with_two_decimal_amounts() -> None:
    out = io.StringIO()
    write_csv(rows_of([LONG, WASH], "basis"), out)
    assert out.getvalue().splitlines() == [
        "part,box,description,date_acquired,date_sold,proceeds,cost_basis,adjustment_code,"
        "adjustment,gain_or_loss,account,wallet,lot_id,alert_id,reason",
        "I,G,0.5 BTC,01/10/2026,03/15/2026,1000.13,1500.00,W,200.01,-299.86,acct-1,cold,"
        "LOT-W,AL-7,wash_sale",
        # No code: column (g) is left blank, as the form's instructions say.
        "II,J,10 ETH,02/29/2024,06/02/2026,2500.56,4000.99,,,-1500.43,acct-2,hot,LOT-L,AL-8,",
    ]
    assert out.getvalue().endswith("\n") and "\r" not in out.getvalue()


def test_csv_of_whole_dollar_amounts_still_has_two_decimals() -> None:
    out = io.StringIO()
    write_csv(rows_of([_sale("S", date(2026, 7, 4), "short", "5", "7")]), out)
    assert out.getvalue().splitlines()[1].split(",")[5:10] == ["5.00", "7.00", "", "", "-2.00"]
