"""The year's netting per pack and the value of a loss, by hand-computed tables.

Rates unless stated: short 0.37, long 0.20, ordinary 0.37, carryforward worth 0.5.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from monitor.settings import load_settings
from monitor.tax.netting import loss_value, outcome, value_curve
from monitor.tax.rules import Position, TaxRules, tax_rules


def rules(jurisdiction: str = "us", **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, "tax.value_model": "ytd"}
    overrides.update({f"tax.{k}": v for k, v in tax.items()})
    return tax_rules(load_settings(overrides=overrides).tax)


def pos(**figures: int | str) -> Position:
    return Position(**{k: D(str(v)) for k, v in figures.items()})


# (position, taxable gain, tax, ordinary offset, carry short, carry long)
US_CASES = [
    (pos(short_gains=10000, short_losses=4000), 6000, "2220", 0, 0, 0),
    (pos(short_losses=10000), 0, "-1110", 3000, 7000, 0),  # the $3,000 cap, the rest carried
    (pos(short_losses=5000, long_gains=2000), 0, "-1110", 3000, 0, 0),  # across, then the cap
    (pos(short_losses=2000, long_losses=5000), 0, "-1110", 3000, 0, 4000),  # cap uses ST first
    (pos(short_gains=5000, long_losses=2000), 3000, "1110", 0, 0, 0),  # remaining ST gain
    (pos(short_losses=1000, long_gains=4000), 3000, "600", 0, 0, 0),  # remaining LT gain
    (pos(short_gains=500, carry_short=1000), 0, "-185", 500, 0, 0),  # carried-in loss used
    (pos(short_gains=4000, long_gains=6000), 10000, "2680", 0, 0, 0),
]


@pytest.mark.parametrize(("p", "taxable", "tax", "offset", "cs", "cl"), US_CASES)
def test_us_netting(p: Position, taxable: int, tax: str, offset: int, cs: int, cl: int) -> None:
    o = outcome(rules(), p)
    assert (o.taxable_gain, o.tax, o.ordinary_offset, o.carry_short, o.carry_long) == (
        taxable,
        D(tax),
        offset,
        cs,
        cl,
    )


def test_us_married_filing_separately_cap_is_1500() -> None:
    o = outcome(rules(filing_status="married_separate"), pos(short_losses=10000))
    assert (o.ordinary_offset, o.tax, o.carry_short) == (1500, D("-555"), 8500)


@pytest.mark.parametrize(
    ("jurisdiction", "p", "taxable", "tax", "carry"),
    [
        # ca: half of the net gain is taxable.
        ("ca", pos(short_gains=10000, short_losses=4000), 3000, "1110", 0),
        ("ca", pos(short_losses=4000, carry_short=1000), 0, "0", 5000),
        # uk (rate 0.37 here): the GBP 3,000 allowance comes off net gains.
        ("uk", pos(short_gains=5000), 2000, "740", 0),
        ("uk", pos(short_gains=5000, carry_short=4000), 0, "0", 2000),  # carry down to 3,000
        ("uk", pos(short_gains=5000, short_losses=3000), 0, "0", 0),  # allowance partly wasted
        ("uk", pos(short_gains=10000, short_losses=3000, carry_short=5000), 0, "0", 1000),
        # au: losses against short-term gains first, then half of the long-term rest.
        ("au", pos(short_gains=1000, long_gains=4000, long_losses=2000), 1500, "555", 0),
        ("au", pos(long_gains=1000, short_losses=3000), 0, "0", 2000),
        # de: only short-term units; below EUR 1,000 nothing, from 1,000 all of it.
        ("de", pos(short_gains="999.99", long_gains=50000), 0, "0", 0),
        ("de", pos(short_gains=1000), 1000, "370", 0),
        ("de", pos(short_gains=1500, carry_short=800), 700, "259", 0),
        ("de", pos(short_gains=900, carry_short=800), 0, "0", 800),  # carry kept below it
    ],
)
def test_other_packs_netting(
    jurisdiction: str, p: Position, taxable: int, tax: str, carry: int
) -> None:
    o = outcome(rules(jurisdiction), p)
    assert (o.taxable_gain, o.tax, o.carry_short + o.carry_long) == (taxable, D(tax), carry)


def test_flat_value_is_rate_times_loss_by_character() -> None:
    r = rules(value_model="flat")
    assert loss_value(r, Position(), D(1000), D(500)) == D("470.00")


@pytest.mark.parametrize(
    ("jurisdiction", "p", "term", "starts", "slopes"),
    [
        # ST gains 2,000 (0.37), then LT gains 1,000 (0.20), then the cap (ordinary 0.37),
        # then carried forward (0.5 * 0.37).
        ("us", pos(short_gains=2000, long_gains=1000), "short",
         [0, 2000, 3000, 6000], ["0.37", "0.20", "0.37", "0.185"]),
        # The same year, a long-term loss: LT gains first (0.20), then the ST gains and
        # the cap (both 0.37), then carried forward keeping its character (0.5 * 0.20).
        ("us", pos(short_gains=2000, long_gains=1000), "long",
         [0, 1000, 6000], ["0.20", "0.37", "0.10"]),
        # uk: gains 5,000 at 0.37 down to the allowance, wasted against it, then carried.
        ("uk", pos(short_gains=5000), "short", [0, 2000, 5000], ["0.37", "0", "0.185"]),
        # au: non-discount gains 1,000 at 0.37, then discounted gains at 0.5 * 0.37, and
        # the carry is worth the same 0.185.
        ("au", pos(short_gains=1000, long_gains=4000), "short", [0, 1000], ["0.37", "0.185"]),
    ],
)  # fmt: skip
def test_value_curve_segments(
    jurisdiction: str, p: Position, term: str, starts: list[int], slopes: list[str]
) -> None:
    curve = value_curve(rules(jurisdiction), p, "short" if term == "short" else "long")
    kept = [
        (s, m)
        for i, (s, m) in enumerate(zip(curve.starts, curve.slopes, strict=True))
        if i == 0 or m != curve.slopes[i - 1]  # merge collinear pieces
    ]
    assert kept == [(D(s), D(m)) for s, m in zip(starts, slopes, strict=True)]


def test_de_threshold_makes_the_value_jump() -> None:
    """Short-term gains 1,500 at 0.37: a loss of up to 500 saves 0.37 each; one cent more
    brings the year under EUR 1,000 and saves the whole 555; then nothing until the
    gains are used up, then the carry (0.185)."""
    r, p = rules("de"), pos(short_gains=1500)
    assert loss_value(r, p, D(500), D(0)) == D("185")
    assert loss_value(r, p, D("500.01"), D(0)) == D("555")
    assert loss_value(r, p, D(1500), D(0)) == D("555")
    assert loss_value(r, p, D(2500), D(0)) == D("740")
    curve = value_curve(r, p, "short")
    assert curve.at(D("500.01")) == D("555") and curve.at(D(2500)) == D("740")


def test_de_long_term_loss_is_worth_nothing() -> None:
    assert loss_value(rules("de"), pos(short_gains=5000), D(0), D(3000)) == 0
