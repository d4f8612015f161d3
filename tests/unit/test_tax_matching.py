"""The packs' matching and basis (monitor/tax/matching.py), pinned to the authorities' own
worked examples and to hand-computed tables. Every expected figure below is the
authority's or computed by hand in the comment beside it, never taken from the code.

HMRC figures are in pounds in the manual; the engine is currency-blind, so they are used
as they are.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from monitor.settings import load_settings
from monitor.tax.matching import Booked, Buy, Sale, book
from monitor.tax.rules import TaxRules, tax_rules

CENT = D("0.01")


def rules(jurisdiction: str, **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, **{f"tax.{k}": v for k, v in tax.items()}}
    return tax_rules(load_settings(overrides=overrides).tax)


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def buy(lot_id: str, day: str, qty: str, cost: str, hour: int = 12, wallet: str = "w") -> Buy:
    return Buy(lot_id, wallet, at(day, hour), D(qty), D(cost), seq=f"{day}{hour:02d}{lot_id}")


def sale(
    sale_id: str, day: str, parts: list[tuple[str, str]], proceeds: str, hour: int = 12
) -> Sale:
    """A sale closing `parts` (lot_id, units); proceeds shared by units."""
    total = sum(D(q) for _, q in parts)
    priced = tuple((lot, D(q), D(proceeds) * D(q) / total) for lot, q in parts)
    return Sale(sale_id, "w", at(day, hour), priced, seq=f"{day}{hour:02d}~{sale_id}")


def cost(booked: Booked, sale_id: str) -> D:
    return booked.sales[sale_id].cost


def gain(booked: Booked, sale_id: str) -> D:
    rows = booked.sales[sale_id].rows
    return sum((d.gain_usd + d.disallowed_loss_usd for d in rows), D(0))


def pool(booked: Booked) -> tuple[D, D]:
    """Units and cost still held (what the pool carries)."""
    return (
        sum((q for q, _ in booked.open.values()), D(0)),
        sum((c for _, c in booked.open.values()), D(0)),
    )


UK = rules("uk")


def test_hmrc_crypto22251_basic_section_104_pool_disposal() -> None:
    """CRYPTO22251 (example 1): 100 token A for 1,000, then 50 for 125,000 on 18 September:
    a pool of 150 costing 126,000. 1 December: 50 sold for 300,000; allowable cost
    126,000 x 50/150 = 42,000; gain 258,000; the pool keeps 100 costing 84,000."""
    buys = [buy("A1", "2025-01-10", "100", "1000"), buy("A2", "2025-09-18", "50", "125000")]
    booked = book(UK, "a", "A", buys, [sale("S", "2025-12-01", [("A1", "50")], "300000")])
    assert cost(booked, "S") == D(42000)
    assert gain(booked, "S") == D(258000)
    assert pool(booked) == (D(100), D(84000))
    assert booked.sales["S"].reason == "s104 50"


def test_hmrc_crypto22252_same_day_rule() -> None:
    """CRYPTO22252 (example 2): pool 5,000 token B costing 500. On 23 June: morning sale of
    1,000 for 800, afternoon purchase of 1,600 for 1,000, evening sale of 500 for 600.
    One disposal of 1,500 for 1,400 matched with the same day's purchase: cost
    1,000 x 1,500/1,600 = 937.50 (HMRC shows 938), gain 462.50 (462). The 100 unmatched
    go into the pool with 62.50 (62): 5,100 units costing 562.50 (562)."""
    buys = [buy("P", "2025-01-01", "5000", "500"), buy("B", "2025-06-23", "1600", "1000", 15)]
    sales = [
        sale("morning", "2025-06-23", [("P", "1000")], "800", 9),
        sale("evening", "2025-06-23", [("P", "500")], "600", 20),
    ]
    booked = book(UK, "a", "B", buys, sales)
    assert cost(booked, "morning") + cost(booked, "evening") == D("937.5")
    assert gain(booked, "morning") + gain(booked, "evening") == D("462.5")
    assert pool(booked) == (D(5100), D("562.5"))
    assert "same_day" in booked.sales["evening"].reason


def test_hmrc_crypto22253_thirty_day_rule() -> None:
    """CRYPTO22253 (example 3): pool 2,000 token C costing 1,000. Sales: 31 March 1,000 for
    400, 20 April 500 for 150. Buys: 21 April 700 for 175, 28 April 500 for 100, 1 May 500
    for 150. 31 March is matched with 21/04 (700: 175) and 300 of 28/04 (60): gain 165.
    20 April with 200 of 28/04 (40) and 300 of 01/05 (90): gain 20. The other 200 of 01/05
    and their 60 join the pool: 2,200 units, cost 1,000 + 60 = 1,060."""
    buys = [
        buy("P", "2025-01-01", "2000", "1000"),
        buy("B1", "2025-04-21", "700", "175"),
        buy("B2", "2025-04-28", "500", "100"),
        buy("B3", "2025-05-01", "500", "150"),
    ]
    sales = [
        sale("mar31", "2025-03-31", [("P", "1000")], "400"),
        sale("apr20", "2025-04-20", [("P", "500")], "150"),
    ]
    booked = book(UK, "a", "C", buys, sales)
    assert (gain(booked, "mar31"), gain(booked, "apr20")) == (D(165), D(20))
    assert pool(booked) == (D(2200), D(1060))
    assert booked.sales["mar31"].reason == "bed_and_breakfast 1000 (2025-04-21, 2025-04-28)"


def test_hmrc_crypto22255_thirty_day_rule_and_the_pool() -> None:
    """CRYPTO22255 (example 5): pool 14,000 token E costing 200,000. 30 August: 4,000 sold
    for 160,000; 11 September: 500 bought for 17,500. Cost: 17,500 (30 day) + 200,000 x
    3,500/14,000 = 50,000 (s104): gain 92,500. Pool: 10,500 costing 150,000."""
    buys = [buy("P", "2025-01-01", "14000", "200000"), buy("N", "2025-09-11", "500", "17500")]
    booked = book(UK, "a", "E", buys, [sale("S", "2025-08-30", [("P", "4000")], "160000")])
    assert gain(booked, "S") == D(92500)
    assert pool(booked) == (D(10500), D(150000))


def test_hmrc_crypto22256_same_day_thirty_day_and_pool_together() -> None:
    """CRYPTO22256 (example 6): pool 100,000 token F costing 300,000. 31 July: 10,000
    bought for 45,000 and 30,000 sold for 150,000; 5 August: 20,000 sold for 100,000;
    6 August: 50,000 bought for 225,000; 7 August: 100,000 sold for 150,000.
    31 July: same day 45,000 + 30 day 225,000 x 20,000/50,000 = 90,000: gain 15,000.
    5 August: 30 day 90,000: gain 10,000. The other 10,000 of 6 August (45,000) join the
    pool: 110,000 costing 345,000. 7 August (by hand): 345,000 x 100,000/110,000 =
    313,636.36: loss 163,636.36; 10,000 left costing 31,363.64."""
    buys = [
        buy("P", "2025-01-01", "100000", "300000"),
        buy("J31", "2025-07-31", "10000", "45000", 9),
        buy("A6", "2025-08-06", "50000", "225000"),
    ]
    sales = [
        sale("jul31", "2025-07-31", [("P", "30000")], "150000", 15),
        sale("aug5", "2025-08-05", [("P", "20000")], "100000"),
        sale("aug7", "2025-08-07", [("P", "50000"), ("A6", "50000")], "150000"),
    ]
    booked = book(UK, "a", "F", buys, sales)
    assert (gain(booked, "jul31"), gain(booked, "aug5")) == (D(15000), D(10000))
    assert gain(booked, "aug7").quantize(CENT) == D("-163636.36")
    units, left = pool(booked)
    assert (units, left.quantize(CENT)) == (D(10000), D("31363.64"))
    assert booked.sales["jul31"].reason == "same_day 10000; bed_and_breakfast 20000 (2025-08-06)"


def test_uk_bed_and_breakfast_takes_the_oldest_first_and_stops_at_day_30() -> None:
    """Sale on 31 March of 1 unit; buys on 30 April (day 30: inside) and 2 April: the 2 April
    buy (0.25 for 100) is matched first, then 0.75 of 30 April (1 for 500: 375)."""
    buys = [
        buy("P", "2025-01-01", "10", "10000"),
        buy("D30", "2025-04-30", "1", "500"),
        buy("D2", "2025-04-02", "0.25", "100"),
        buy("D31", "2025-05-01", "1", "1"),  # day 31: outside
    ]
    booked = book(UK, "a", "X", buys, [sale("S", "2025-03-31", [("P", "1")], "700")])
    assert cost(booked, "S") == D(475)
    assert booked.sales["S"].reason == "bed_and_breakfast 1 (2025-04-02, 2025-04-30)"


def test_uk_a_later_purchase_recosts_the_earlier_disposal() -> None:
    """A loss harvested on 1 March (pool 2 for 100,000: cost 50,000, sold for 40,000) is
    undone by a rebuy on 20 March of 1 for 41,000: the disposal is matched to the rebuy,
    a loss of 1,000 instead of 10,000."""
    buys = [buy("P", "2025-01-01", "2", "100000")]
    sales = [sale("H", "2025-03-01", [("P", "1")], "40000")]
    assert gain(book(UK, "a", "BTC", buys, sales), "H") == D(-10000)
    rebuy = buy("R", "2025-03-20", "1", "41000")
    later = book(UK, "a", "BTC", [*buys, rebuy], sales)
    assert gain(later, "H") == D(-1000)
    assert later.sales["H"].reason == "bed_and_breakfast 1 (2025-03-20)"
    assert pool(later) == (D(2), D(100000))  # the pool kept its two original units' cost


def test_irs_pub_550_wash_sale_case_study() -> None:
    """IRS (Pub. 550; VITA 'Case Study 1: Wash Sales'): 100 shares bought for 1,000, sold
    for 750, 100 bought within 30 days for 800: the 250 loss is not deductible and the
    new shares' basis is 800 + 250 = 1,050. (us pack with [tax] wash_sale_days = 30.)"""
    us = rules("us", wash_sale_days=30)
    buys = [buy("OLD", "2025-01-02", "100", "1000"), buy("NEW", "2025-03-10", "100", "800")]
    booked = book(us, "a", "X", buys, [sale("S", "2025-03-01", [("OLD", "100")], "750")])
    (row,) = booked.sales["S"].rows
    assert (row.gain_usd, row.disallowed_loss_usd) == (D(-250), D(250))
    assert booked.open["NEW"] == (D(100), D(1050))
    assert booked.sales["S"].allowed_from == date(2025, 4, 10)  # 31 days after the rebuy


def test_us_wash_sale_in_proportion_and_off_by_default() -> None:
    """Hand: 2 sold at a 1,000 loss, 0.5 bought 10 days before: a quarter (250) is
    disallowed. Without wash_sale_days the whole loss stands."""
    buys = [buy("L", "2025-01-02", "2", "3000"), buy("R", "2025-03-21", "0.5", "500")]
    sales = [sale("S", "2025-03-31", [("L", "2")], "2000")]
    assert booked_disallowed(rules("us", wash_sale_days=30), buys, sales) == D(250)
    assert booked_disallowed(rules("us"), buys, sales) == D(0)
    # the lots of the sale itself are not replacements
    same = [sale("S", "2025-03-31", [("L", "2"), ("R", "0.5")], "2500")]
    assert booked_disallowed(rules("us", wash_sale_days=30), buys, same) == D(0)


def booked_disallowed(r: TaxRules, buys: list[Buy], sales: list[Sale]) -> D:
    return book(r, "a", "X", buys, sales).sales["S"].disallowed


CA = rules("ca")


def test_ca_average_cost_and_superficial_loss_added_to_the_acb() -> None:
    """Hand table (ITA s.47 average cost; s.54 superficial loss; s.53(1)(f) ACB):
    Jan 1 buy 100 for 1,000; Mar 1 buy 100 for 2,000: ACB 3,000 (15.00 a unit).
    Jun 1 sell 50 for 1,000: cost 750, gain 250; ACB 2,250 for 150.
    Sep 1 sell 150 for 1,500: cost 2,250, loss 750. Sep 15 buy 50 for 400, held on Oct 1:
    denied 750 x min(150, 50, 50)/150 = 250; allowed loss 500; ACB 400 + 250 = 650."""
    buys = [
        buy("B1", "2025-01-01", "100", "1000"),
        buy("B2", "2025-03-01", "100", "2000"),
        buy("B3", "2025-09-15", "50", "400"),
    ]
    sales = [
        sale("jun", "2025-06-01", [("B1", "50")], "1000"),
        sale("sep", "2025-09-01", [("B1", "50"), ("B2", "100")], "1500"),
    ]
    booked = book(CA, "a", "X", buys, sales)
    assert (cost(booked, "jun"), gain(booked, "jun")) == (D(750), D(250))
    assert (cost(booked, "sep"), booked.sales["sep"].disallowed) == (D(2250), D(250))
    assert gain(booked, "sep") == D(-500)
    assert pool(booked) == (D(50), D(650))
    assert booked.sales["sep"].reason.startswith("average cost (ACB); superficial_loss: 50 of 150")
    # without the rebuy the 750 loss stands and nothing is carried
    alone = book(CA, "a", "X", buys[:2], sales)
    assert (alone.sales["sep"].disallowed, pool(alone)) == (D(0), (D(0), D(0)))


def test_ca_no_superficial_loss_when_the_substitute_is_gone_by_day_30() -> None:
    """Same history, but the 50 bought on Sep 15 are sold on Sep 25: nothing is held at the
    end of Oct 1, so the Sep 1 loss is not superficial (CRA: both conditions must hold)."""
    buys = [buy("B1", "2025-01-01", "200", "3000"), buy("B3", "2025-09-15", "50", "400")]
    sales = [
        sale("sep", "2025-09-01", [("B1", "200")], "2000"),
        sale("sep25", "2025-09-25", [("B3", "50")], "450"),
    ]
    booked = book(CA, "a", "X", buys, sales)
    assert booked.sales["sep"].disallowed == D(0)
    assert gain(booked, "sep") == D(-1000)


def test_de_sells_the_oldest_units_whatever_the_order_names() -> None:
    """§23 EStG / BMF 10.05.2022: FIFO per wallet. A sale naming the young lot consumes the
    old one; sold after the old one's first anniversary it is long-term (tax-free)."""
    de = rules("de")
    buys = [buy("OLD", "2024-12-01", "1", "100"), buy("YOUNG", "2025-06-01", "1", "200")]
    booked = book(de, "a", "X", buys, [sale("S", "2025-12-02", [("YOUNG", "1")], "150")])
    (row,) = booked.sales["S"].rows
    assert (row.lot_id, row.cost_basis_usd, row.term) == ("OLD", D(100), "long")
    assert booked.open == {"YOUNG": (D(1), D(200))}


@pytest.mark.parametrize(("sold", "term"), [("2025-07-01", "short"), ("2025-07-02", "long")])
def test_au_discount_needs_twelve_months_excluding_both_days(sold: str, term: str) -> None:
    """ITA 1997 s115-25: held at least 12 months, not counting the days of acquisition and
    disposal: bought 1 July 2024, a sale on 2 July 2025 gets the discount, 1 July does not."""
    au = rules("au")
    booked = book(au, "a", "X", [buy("L", "2024-07-01", "1", "100")], [
        sale("S", sold, [("L", "1")], "300")
    ])  # fmt: skip
    assert booked.sales["S"].rows[0].term == term


def test_rows_add_up_to_their_sale_and_disallowance_sits_on_loss_rows() -> None:
    """Two lots (one at a gain of 500, one at a loss of 1,500) sold with a replacement of
    all of it bought before: the disallowed 1,000 (the net loss) sits on the loss row."""
    us = rules("us", wash_sale_days=30)
    buys = [
        buy("G", "2025-01-02", "1", "500"),
        buy("L", "2025-01-03", "1", "2500"),
        buy("R", "2025-03-20", "2", "2000"),
    ]
    booked = book(us, "a", "X", buys, [sale("S", "2025-03-31", [("G", "1"), ("L", "1")], "2000")])
    rows = {d.lot_id: d for d in booked.sales["S"].rows}
    assert (rows["G"].disallowed_loss_usd, rows["L"].disallowed_loss_usd) == (D(0), D(1000))


def test_acb_worked_example_with_fees() -> None:
    """adjustedcostbase.ca, 'How to calculate ACB and capital gains' (CRA's average-cost
    method; fees in the cost and out of the proceeds): buy 100 at 50 + 10 fee (ACB 5,010);
    sell 50 at 120 - 10 fee: proceeds 5,990, ACB 2,505, gain 3,485; buy 50 at 130 + 10
    (ACB 9,015 for 100, 90.15 a share); sell 40 at 90 - 10: proceeds 3,590, ACB 3,606,
    loss 16. (CRA's own guide states the method without figures we could cite here.)"""
    buys = [buy("B1", "2014-03-03", "100", "5010"), buy("B2", "2014-07-18", "50", "6510")]
    sales = [
        sale("S1", "2014-05-01", [("B1", "50")], "5990"),
        sale("S2", "2014-09-25", [("B1", "40")], "3590"),
    ]
    booked = book(CA, "a", "X", buys, sales)
    assert (cost(booked, "S1"), gain(booked, "S1")) == (D(2505), D(3485))
    assert (cost(booked, "S2"), gain(booked, "S2")) == (D(3606), D(-16))
    assert pool(booked) == (D(60), D(5409))


def test_superficial_loss_worked_example() -> None:
    """adjustedcostbase.ca, 'What is the superficial loss rule' (example 1): 100 bought at
    50 (5,000) on 6 Jan 2014, sold at 30 (3,000) on 3 Nov 2014, 100 bought back at 30 the
    next day and held: the 2,000 loss is superficial, added to the new shares' ACB
    (3,000 + 2,000 = 5,000); sold at 80 (8,000) on 2 Dec 2015: a 3,000 gain."""
    buys = [buy("B1", "2014-01-06", "100", "5000"), buy("B2", "2014-11-04", "100", "3000")]
    sales = [
        sale("S1", "2014-11-03", [("B1", "100")], "3000"),
        sale("S2", "2015-12-02", [("B2", "100")], "8000"),
    ]
    booked = book(CA, "a", "X", buys, sales)
    assert (booked.sales["S1"].disallowed, gain(booked, "S1")) == (D(2000), D(0))
    assert (cost(booked, "S2"), gain(booked, "S2")) == (D(5000), D(3000))
