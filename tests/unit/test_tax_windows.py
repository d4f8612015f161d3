"""Windows around a sale, by hand: wash sales on both sides, superficial losses with and
without the holding at day 30, UK same-day and 30-day matching, the do-not-buy list."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from monitor.settings import load_settings
from monitor.tax.disposal import Disposal
from monitor.tax.rules import TaxRules, tax_rules
from monitor.tax.windows import (
    Acquisition,
    DoNotBuyList,
)

SALE = date(2026, 3, 31)


def rules(jurisdiction: str, **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, **{f"tax.{k}": v for k, v in tax.items()}}
    return tax_rules(load_settings(overrides=overrides).tax)


def buy(day: date, qty: str, lot_id: str, cost: str = "1000") -> Acquisition:
    return Acquisition("acct", "BTC", day, D(qty), D(cost), lot_id=lot_id)


def test_us_wash_sale_window_after_the_sale_is_the_do_not_buy_list() -> None:
    listing = DoNotBuyList(rules("us", wash_sale_days=30))
    listing.add_harvest("acct", "BTC", SALE, D(1000), D(1))
    assert listing.check("acct", "BTC", date(2026, 4, 30)) is not None  # day 30 after
    assert listing.check("acct", "BTC", date(2026, 5, 1)) is None  # day 31
    assert listing.check("other", "BTC", date(2026, 4, 2)) is None  # another account


def test_ca_window_after_the_sale() -> None:
    listing = DoNotBuyList(rules("ca"))
    listing.add_harvest("acct", "BTC", SALE, D(1000), D(1))
    entry = listing.check("acct", "BTC", date(2026, 4, 15))
    assert entry is not None and entry.until == date(2026, 5, 1)


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
