"""TaxRules: a rule pack with the user's `[tax]` numbers applied, in exact Decimal.

Everything the tax side computes (the character of a lot, the flat value of a loss, the
year's netting, the window around a sale, the first day the same asset may be bought
back) reads one of these, so a number on an alert traces back to a pack key or a
`[tax]` setting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from monitor.settings import TaxSettings
from monitor.tax.disposal import Disposal, Term
from monitor.tax.packs import RulePack, load_pack, month_day
from monitor.triggers import long_term_from

ValueModel = Literal["flat", "ytd"]
ZERO = Decimal(0)


def exact(value: float) -> Decimal:
    """The decimal a user wrote for a float setting (0.37 -> Decimal('0.37'))."""
    return Decimal(repr(value))


@dataclass(frozen=True, slots=True)
class Position:
    """One taxpayer's realized gains and losses this tax year (gross, >= 0), plus carryovers."""

    short_gains: Decimal = ZERO
    short_losses: Decimal = ZERO
    long_gains: Decimal = ZERO
    long_losses: Decimal = ZERO
    carry_short: Decimal = ZERO  # losses carried in from earlier years, by character
    carry_long: Decimal = ZERO

    @classmethod
    def from_net(
        cls, short: Decimal, long: Decimal, carry_short: Decimal = ZERO, carry_long: Decimal = ZERO
    ) -> Position:
        """From net figures (> 0 gains, < 0 losses), as a user knows them."""
        return cls(
            short_gains=max(short, ZERO),
            short_losses=max(-short, ZERO),
            long_gains=max(long, ZERO),
            long_losses=max(-long, ZERO),
            carry_short=carry_short,
            carry_long=carry_long,
        )

    def plus(self, term: Term, gain: Decimal) -> Position:
        """This position after realizing `gain` (< 0: a loss) of character `term`."""
        gains, losses = (max(gain, ZERO), max(-gain, ZERO))
        if term == "short":
            return replace(
                self, short_gains=self.short_gains + gains, short_losses=self.short_losses + losses
            )
        return replace(
            self, long_gains=self.long_gains + gains, long_losses=self.long_losses + losses
        )

    def realize(self, disposals: Iterable[Disposal]) -> Position:
        """This position after the ledger's `disposals` (a loss less its disallowed part).

        For the ytd model: after a harvest fills, `book.set_position(account,
        book.position(account).realize(new_disposals))` rebuilds the triggers."""
        pos = self
        for d in disposals:
            pos = pos.plus(d.term, d.reported_gain_usd)
        return pos


@dataclass(frozen=True, slots=True)
class TaxRules:
    """The effective rules: pack + `[tax]` overrides (see docs/tax.md for each field)."""

    pack: RulePack
    value_model: ValueModel
    short_rate: Decimal  # on short-term gains (packs without a holding period: on all gains)
    long_rate: Decimal  # on long-term gains (flat model; us ytd netting)
    ordinary_rate: Decimal  # on ordinary income a net loss offsets (us)
    carryforward_value: Decimal  # what a dollar carried forward is worth today, as a fraction
    inclusion_rate: Decimal
    long_term_discount: Decimal
    annual_exemption: Decimal
    ordinary_income_cap: Decimal
    window_days: int
    rebuy_wait_days: int
    start: Position  # the year so far, before anything the monitor realizes

    @property
    def name(self) -> str:
        return self.pack.name

    @property
    def has_holding_period(self) -> bool:
        return self.pack.holding_period == "one_year"

    def long_term_from(self, acquired: date) -> date | None:
        """First day a lot bought on `acquired` is long-term (None: the pack has no terms)."""
        return long_term_from(acquired) if self.has_holding_period else None

    def term(self, acquired: date, sold: date) -> Term:
        """The character of a sale on `sold` of a lot bought on `acquired`."""
        first = self.long_term_from(acquired)
        return "long" if first is not None and sold >= first else "short"

    def flat_rate(self, term: Term) -> Decimal:
        """The flat model's value of a dollar of loss of this character."""
        if term == "long" and self.pack.long_term_exempt:
            return ZERO
        rate = self.short_rate if term == "short" else self.long_rate
        return rate if self.inclusion_rate == 1 else rate * self.inclusion_rate

    def first_rebuy_day(self, sold: date) -> date:
        """First day the same asset may be bought back without touching this sale's loss."""
        after_window = self.window_days + 1 if self.window_days else 0
        return sold + timedelta(days=max(after_window, self.rebuy_wait_days))

    def tax_year(self, day: date) -> int:
        """The tax year `day` falls in, named as the pack names it (`tax_year_named_by`:
        the calendar year it starts in, uk 2025 = 2025/26; or ends in, au 2025 = 2024-25)."""
        month, dom = month_day(self.pack.tax_year_starts)
        starts = day.year if (day.month, day.day) >= (month, dom) else day.year - 1
        return starts + self._label_shift

    def tax_year_bounds(self, year: int) -> tuple[date, date]:
        """First and last day of tax year `year` (named as `tax_year` names it)."""
        month, dom = month_day(self.pack.tax_year_starts)
        start = date(year - self._label_shift, month, dom)
        return start, date(start.year + 1, month, dom) - timedelta(days=1)

    @property
    def _label_shift(self) -> int:
        """0 when a tax year is named by the year it starts in, 1 by the year it ends in
        (calendar-year packs: no difference)."""
        late_start = self.pack.tax_year_starts != "01-01"
        return 1 if late_start and self.pack.tax_year_named_by == "end" else 0

    def tax_year_label(self, year: int) -> str:
        """How the pack's users write tax year `year`: 2025, 2025/26 (uk), 2024-25 (au)."""
        if self.pack.tax_year_starts == "01-01":
            return str(year)
        first, last = self.tax_year_bounds(year)
        sep = "/" if self.pack.tax_year_named_by == "start" else "-"
        return f"{first.year}{sep}{last.year % 100:02d}"


def tax_rules(tax: TaxSettings, packs_dir: str = "") -> TaxRules:
    """TaxRules from a `[tax]` settings section (loads the pack it names)."""
    pack = load_pack(tax.jurisdiction, packs_dir or tax.packs_dir)
    cap = (
        pack.ordinary_income_cap_mfs
        if tax.filing_status == "married_separate"
        else pack.ordinary_income_cap
    )
    return TaxRules(
        pack=pack,
        value_model=tax.value_model,
        short_rate=exact(tax.short_term_rate),
        long_rate=exact(tax.long_term_rate),
        ordinary_rate=exact(tax.ordinary_income_rate),
        carryforward_value=exact(tax.carryforward_value),
        inclusion_rate=(
            pack.inclusion_rate if tax.inclusion_rate is None else exact(tax.inclusion_rate)
        ),
        long_term_discount=(
            pack.long_term_discount if tax.cgt_discount is None else exact(tax.cgt_discount)
        ),
        annual_exemption=(
            pack.annual_exemption if tax.annual_exemption is None else tax.annual_exemption
        ),
        ordinary_income_cap=cap,
        window_days=pack.window_days if tax.wash_sale_days is None else tax.wash_sale_days,
        rebuy_wait_days=(
            pack.rebuy_wait_days if tax.rebuy_wait_days is None else tax.rebuy_wait_days
        ),
        start=Position.from_net(
            tax.ytd_short_term_gain_usd,
            tax.ytd_long_term_gain_usd,
            tax.carryforward_short_usd,
            tax.carryforward_long_usd,
        ),
    )
