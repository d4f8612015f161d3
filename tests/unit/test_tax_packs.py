"""Rule packs: loading, errors, and each pack's holding period, flat rates and windows.

Hand-computed tables; the sources of every rule are in monitor/tax/jurisdictions/*.toml.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.tax.packs import available_packs, load_pack
from monitor.tax.rules import TaxRules, tax_rules

PACKS = ("au", "ca", "de", "uk", "us")


def rules(jurisdiction: str, **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, **{f"tax.{k}": v for k, v in tax.items()}}
    return tax_rules(load_settings(overrides=overrides).tax)


def test_every_pack_loads_and_names_its_sources() -> None:
    assert available_packs() == list(PACKS)
    for name in PACKS:
        assert load_pack(name).sources


def test_unknown_jurisdiction_lists_the_packs() -> None:
    with pytest.raises(ConfigError, match=r"no rule pack 'fr'.*available: au, ca, de, uk, us"):
        rules("fr")


def test_a_bad_pack_names_its_file_and_key(tmp_path: Path) -> None:
    text = Path(load_pack.__code__.co_filename).parent / "jurisdictions/us.toml"
    (tmp_path / "xx.toml").write_text(
        text.read_text()
        .replace('name = "us"', 'name = "xx"')
        .replace('netting = "us"', 'netting = "nope"')
    )
    with pytest.raises(ConfigError, match=r"xx.toml: invalid rule pack: netting"):
        load_pack("xx", tmp_path)


@pytest.mark.parametrize(
    ("pack", "acquired", "sold", "term"),
    [
        ("us", date(2025, 3, 1), date(2026, 3, 1), "short"),  # the anniversary: one year
        ("us", date(2025, 3, 1), date(2026, 3, 2), "long"),  # more than one year
        ("us", date(2024, 2, 29), date(2025, 2, 28), "short"),  # leap day bought
        ("us", date(2024, 2, 29), date(2025, 3, 1), "long"),
        ("us", date(2023, 2, 28), date(2024, 2, 29), "long"),  # into a leap year
        ("us", date(2023, 3, 1), date(2024, 2, 29), "short"),
        ("de", date(2025, 6, 30), date(2026, 6, 30), "short"),  # still taxable on the day
        ("de", date(2025, 6, 30), date(2026, 7, 1), "long"),  # tax-free from the next day
        ("au", date(2024, 2, 29), date(2025, 3, 1), "long"),  # 12 months, both ends excluded
        ("au", date(2024, 2, 29), date(2025, 2, 28), "short"),
        ("ca", date(2020, 1, 1), date(2026, 1, 1), "short"),  # no holding period
        ("uk", date(2020, 1, 1), date(2026, 1, 1), "short"),
    ],
)
def test_holding_period_boundaries(pack: str, acquired: date, sold: date, term: str) -> None:
    assert rules(pack).term(acquired, sold) == term


@pytest.mark.parametrize(
    ("pack", "overrides", "short", "long"),
    [
        ("us", {}, "0.37", "0.2"),
        ("ca", {}, "0.185", "0.10"),  # 50% inclusion
        ("ca", {"inclusion_rate": 0.6667}, "0.246679", "0.133340"),
        ("uk", {"short_term_rate": 0.24}, "0.24", "0.2"),
        ("au", {}, "0.37", "0.2"),
        ("de", {"short_term_rate": 0.42}, "0.42", "0"),  # long-term units are tax-free
    ],
)
def test_flat_rate_by_pack(pack: str, overrides: dict[str, object], short: str, long: str) -> None:
    r = rules(pack, **overrides)
    assert (r.flat_rate("short"), r.flat_rate("long")) == (Decimal(short), Decimal(long))


@pytest.mark.parametrize(
    ("pack", "overrides", "first_rebuy"),
    [
        ("us", {}, date(2026, 3, 1)),  # no wash-sale rule for crypto today
        ("us", {"wash_sale_days": 30}, date(2026, 4, 1)),  # 03-02 .. 03-31 are in the window
        ("ca", {}, date(2026, 4, 1)),
        ("uk", {}, date(2026, 4, 1)),  # the 30 following days match the sale
        ("au", {}, date(2026, 3, 31)),  # a 30-day wait by default
        ("au", {"rebuy_wait_days": 45}, date(2026, 4, 15)),
        ("de", {}, date(2026, 3, 1)),
    ],
)
def test_first_rebuy_day(pack: str, overrides: dict[str, object], first_rebuy: date) -> None:
    assert rules(pack, **overrides).first_rebuy_day(date(2026, 3, 1)) == first_rebuy


@pytest.mark.parametrize(
    ("pack", "day", "year", "bounds"),
    [
        ("us", date(2026, 1, 1), 2026, (date(2026, 1, 1), date(2026, 12, 31))),
        ("uk", date(2026, 4, 5), 2025, (date(2025, 4, 6), date(2026, 4, 5))),
        ("uk", date(2026, 4, 6), 2026, (date(2026, 4, 6), date(2027, 4, 5))),
        # The ATO names an income year by the year it ends in: "2026" is 1 July 2025 to
        # 30 June 2026; HMRC's 2025/26 starts on 6 April 2025 and is named 2025 here.
        ("au", date(2026, 6, 30), 2026, (date(2025, 7, 1), date(2026, 6, 30))),
        ("au", date(2025, 7, 1), 2026, (date(2025, 7, 1), date(2026, 6, 30))),
        ("au", date(2025, 6, 30), 2025, (date(2024, 7, 1), date(2025, 6, 30))),
    ],
)
def test_tax_years(pack: str, day: date, year: int, bounds: tuple[date, date]) -> None:
    r = rules(pack)
    assert (r.tax_year(day), r.tax_year_bounds(year)) == (year, bounds)


@pytest.mark.parametrize(
    ("pack", "label"), [("us", "2025"), ("uk", "2025/26"), ("au", "2024-25"), ("de", "2025")]
)
def test_a_tax_year_is_labelled_as_its_users_write_it(pack: str, label: str) -> None:
    assert rules(pack).tax_year_label(2025) == label


def test_filing_status_sets_the_ordinary_income_cap() -> None:
    assert rules("us").ordinary_income_cap == 3000
    assert rules("us", filing_status="married_separate").ordinary_income_cap == 1500
