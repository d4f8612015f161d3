"""Windows around a sale, by hand: wash sales on both sides, superficial losses with and
without the holding at day 30, UK same-day and 30-day matching, the do-not-buy list."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from monitor.settings import load_settings
from monitor.tax.disposal import Disposal
from monitor.tax.rules import TaxRules, tax_rules
from monitor.tax.windows import (
    Acquisition,
    AcquisitionLog,
    DoNotBuyList,
    match_uk,
    replacement_quantity,
    window_disallowance,
)

SALE = date(2026, 3, 31)


def rules(jurisdiction: str, **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, **{f"tax.{k}": v for k, v in tax.items()}}
    return tax_rules(load_settings(overrides=overrides).tax)


def buy(day: date, qty: str, lot_id: str, cost: str = "1000") -> Acquisition:
    return Acquisition("acct", "BTC", day, D(qty), D(cost), lot_id=lot_id)


def disallowed(r: TaxRules, log: AcquisitionLog, sold: str, excluded: set[str]) -> tuple[D, object]:
    qty, last = replacement_quantity(r, log, "acct", "BTC", SALE, frozenset(excluded))
    result = window_disallowance(r, D(1000), D(sold), qty, last)
    return result.amount, result.allowed_from


@pytest.mark.parametrize(
    ("bought", "expected"),
    [
        (date(2026, 3, 1), (D(1000), date(2026, 4, 1))),  # 30 days before: inside
        (date(2026, 2, 28), (D(0), None)),  # 31 days before: outside
        (SALE, (D(1000), date(2026, 5, 1))),  # the sale day itself
    ],
)
def test_us_wash_sale_window_before_the_sale(bought: date, expected: tuple[D, object]) -> None:
    log = AcquisitionLog([buy(bought, "1", "R1")])
    assert disallowed(rules("us", wash_sale_days=30), log, "1", {"S1"}) == expected


def test_us_wash_sale_is_off_by_default() -> None:
    log = AcquisitionLog([buy(date(2026, 3, 30), "1", "R1")])
    assert disallowed(rules("us"), log, "1", {"S1"}) == (D(0), None)


def test_wash_sale_disallows_in_proportion_to_the_replacement() -> None:
    # 2 units sold at a 1,000 loss, 0.5 bought 10 days earlier: a quarter is disallowed.
    log = AcquisitionLog([buy(date(2026, 3, 21), "0.5", "R1")])
    assert disallowed(rules("us", wash_sale_days=30), log, "2", {"S1"})[0] == D(250)


def test_lots_sold_in_the_same_harvest_are_not_replacements() -> None:
    log = AcquisitionLog([buy(date(2026, 3, 21), "1", "S2")])
    assert disallowed(rules("us", wash_sale_days=30), log, "2", {"S1", "S2"}) == (D(0), None)


def test_us_wash_sale_window_after_the_sale_is_the_do_not_buy_list() -> None:
    listing = DoNotBuyList(rules("us", wash_sale_days=30))
    listing.add_harvest("acct", "BTC", SALE, D(1000), D(1))
    assert listing.check("acct", "BTC", date(2026, 4, 30)) is not None  # day 30 after
    assert listing.check("acct", "BTC", date(2026, 5, 1)) is None  # day 31
    assert listing.check("other", "BTC", date(2026, 4, 2)) is None  # another account


def test_ca_superficial_loss_when_the_rebuy_is_still_held_at_day_30() -> None:
    # Bought 10 days before the sale and kept: still held at the end of day 30 -> denied.
    log = AcquisitionLog([buy(date(2026, 3, 21), "1", "R1")])
    assert disallowed(rules("ca"), log, "1", {"S1"}) == (D(1000), date(2026, 4, 21))


def test_ca_no_superficial_loss_when_the_rebuy_is_sold_by_day_30() -> None:
    # The same purchase sold in this harvest too: not held at day 30 -> the loss stands.
    log = AcquisitionLog([buy(date(2026, 3, 21), "1", "R1")])
    assert disallowed(rules("ca"), log, "1", {"S1", "R1"}) == (D(0), None)


def test_ca_window_after_the_sale() -> None:
    listing = DoNotBuyList(rules("ca"))
    listing.add_harvest("acct", "BTC", SALE, D(1000), D(1))
    entry = listing.check("acct", "BTC", date(2026, 4, 15))
    assert entry is not None and entry.until == date(2026, 5, 1)


def test_uk_matches_same_day_then_next_30_days_then_the_pool() -> None:
    """Sell 3 BTC on 31 March for 60,000. Pool: 4 BTC for 200,000 (50,000 each).
    Same day: 1 BTC at 20,000. 10 April: 0.5 BTC at 9,000; 20 May (50 days): 1 BTC.
    -> 1 same day (20,000), 0.5 bed and breakfast (9,000), 1.5 from the pool (75,000)."""
    parts = match_uk(
        SALE,
        D(3),
        [
            buy(SALE, "1", "SD", "20000"),
            buy(date(2026, 4, 10), "0.5", "BB", "9000"),
            buy(date(2026, 5, 20), "1", "LATE", "19000"),
        ],
        D(4),
        D(200000),
    )
    assert [(p.rule, p.quantity, p.cost_usd) for p in parts] == [
        ("same_day", D(1), D(20000)),
        ("bed_and_breakfast", D("0.5"), D(9000)),
        ("s104", D("1.5"), D(75000)),
    ]
    # Gain: 60,000 - 104,000 = -44,000, against -90,000 if all came from the pool.
    assert sum((p.cost_usd for p in parts), D(0)) == D(104000)


def test_uk_bed_and_breakfast_takes_the_oldest_first_and_stops_at_day_30() -> None:
    parts = match_uk(
        SALE,
        D(1),
        [buy(date(2026, 4, 30), "1", "D30", "500"), buy(date(2026, 4, 2), "0.25", "D2", "100")],
        D(10),
        D(10000),
    )
    assert [(p.rule, p.quantity) for p in parts] == [
        ("bed_and_breakfast", D("0.25")),
        ("bed_and_breakfast", D("0.75")),
    ]


def test_uk_selling_more_than_held_is_an_error() -> None:
    with pytest.raises(ValueError, match="only 1 is held"):
        match_uk(SALE, D(2), [], D(1), D(100))


def test_do_not_buy_list_from_ledger_disposals() -> None:
    def sale(day: date, asset: str, harvest: bool) -> Disposal:
        return Disposal(
            "L", "acct", "w", asset, D(1), date(2025, 1, 1), day, D(900), D(1000), "long",
            harvest=harvest,
        )  # fmt: skip

    listing = DoNotBuyList.from_disposals(
        rules("uk"), [sale(SALE, "BTC", True), sale(SALE, "ETH", False)]
    )
    assert [(e.asset, e.until) for e in listing.entries(date(2026, 4, 1))] == [
        ("BTC", date(2026, 5, 1))
    ]
    assert listing.entries(date(2026, 5, 1)) == []


def test_no_window_no_entry() -> None:
    assert DoNotBuyList(rules("de")).add_harvest("a", "BTC", SALE, D(5), D(1)) is None
