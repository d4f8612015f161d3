"""The year-end view: realized gains and losses of a tax year, netted by the pack.

A pure function over the ledger's disposals (monitor/tax/disposal.py) and the tax rules:
realized short/long gains and losses (a loss reduced by its disallowed part), the
losses harvests realized, the netting (monitor/tax/netting.py: ordinary-income offset,
carryforward), the tax on the year and what the harvests saved, as the tax with them
against the tax without them (plus today's value of the carryforward they add).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from monitor.alerts.schema import cents
from monitor.tax.disposal import Disposal
from monitor.tax.netting import Outcome, carry_worth, outcome
from monitor.tax.rules import ZERO, Position, TaxRules


@dataclass(frozen=True, slots=True)
class YearSummary:
    """One tax year's realized results (exact); `lines()` renders them in cents."""

    jurisdiction: str
    year: int
    first_day: date
    last_day: date
    disposals: int
    short_gains: Decimal
    short_losses: Decimal
    long_gains: Decimal
    long_losses: Decimal
    harvested_losses: Decimal
    harvests: int
    disallowed: Decimal
    carried_in_short: Decimal
    carried_in_long: Decimal
    result: Outcome
    tax_saved: Decimal  # this year's tax without the harvests minus with them
    carryforward_value: Decimal  # today's value of the carryforward the harvests add
    label: str = ""  # the year as the pack's users write it (2025/26, 2024-25)

    @property
    def estimated_tax_saved(self) -> Decimal:
        return self.tax_saved + self.carryforward_value

    def as_dict(self) -> dict[str, str | int]:
        """Every figure, money in cents (for --json)."""
        return {
            "jurisdiction": self.jurisdiction,
            "year": self.year,
            "tax_year": self.label or str(self.year),
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "disposals": self.disposals,
            "short_term_gains_usd": cents(self.short_gains),
            "short_term_losses_usd": cents(self.short_losses),
            "long_term_gains_usd": cents(self.long_gains),
            "long_term_losses_usd": cents(self.long_losses),
            "harvests": self.harvests,
            "harvested_losses_usd": cents(self.harvested_losses),
            "disallowed_losses_usd": cents(self.disallowed),
            "carried_in_short_usd": cents(self.carried_in_short),
            "carried_in_long_usd": cents(self.carried_in_long),
            "taxable_gain_usd": cents(self.result.taxable_gain),
            "ordinary_income_offset_usd": cents(self.result.ordinary_offset),
            "carryforward_short_usd": cents(self.result.carry_short),
            "carryforward_long_usd": cents(self.result.carry_long),
            "tax_usd": cents(self.result.tax),
            "tax_saved_usd": cents(self.tax_saved),
            "carryforward_value_usd": cents(self.carryforward_value),
            "estimated_tax_saved_usd": cents(self.estimated_tax_saved),
        }

    def lines(self) -> list[str]:
        """The summary as aligned text lines."""
        d = self.as_dict()
        labels = [
            ("short_term_gains_usd", "short-term gains"),
            ("short_term_losses_usd", "short-term losses"),
            ("long_term_gains_usd", "long-term gains"),
            ("long_term_losses_usd", "long-term losses"),
            ("harvested_losses_usd", f"harvested losses ({self.harvests} harvests)"),
            ("disallowed_losses_usd", "disallowed losses (windows)"),
            ("carried_in_short_usd", "carried in, short"),
            ("carried_in_long_usd", "carried in, long"),
            ("taxable_gain_usd", "taxable gain"),
            ("ordinary_income_offset_usd", "ordinary income offset"),
            ("carryforward_short_usd", "carryforward out, short"),
            ("carryforward_long_usd", "carryforward out, long"),
            ("tax_usd", "tax on the year (< 0: saved)"),
            ("tax_saved_usd", "tax saved by harvests"),
            ("carryforward_value_usd", "value of carryforward added"),
            ("estimated_tax_saved_usd", "estimated tax saved"),
        ]
        head = (
            f"tax year {d['tax_year']} ({d['from']} to {d['to']}), pack {self.jurisdiction}: "
            f"{self.disposals} disposals"
        )
        return [head] + [f"  {label:<34} {d[key]:>16}" for key, label in labels]


def summarize(
    rules: TaxRules, disposals: Iterable[Disposal], year: int, start: Position | None = None
) -> YearSummary:
    """The summary of tax year `year` (`start`: realized elsewhere and carried in)."""
    first, last = rules.tax_year_bounds(year)
    base = start or Position()
    in_year = sorted(  # rounded as report rows are: both total the same cents
        (d.rounded() for d in disposals if first <= d.sold_on <= last),
        key=lambda d: (d.sold_on, d.lot_id),
    )
    realized = Position().realize(in_year)
    harvests = [d for d in in_year if d.harvest]
    with_all = outcome(rules, base.realize(in_year))
    without = outcome(rules, base.realize(d for d in in_year if not d.harvest))
    harvested = sum((max(ZERO, -d.reported_gain_usd) for d in harvests), ZERO)
    return YearSummary(
        jurisdiction=rules.name,
        year=year,
        first_day=first,
        last_day=last,
        disposals=len(in_year),
        short_gains=realized.short_gains,
        short_losses=realized.short_losses,
        long_gains=realized.long_gains,
        long_losses=realized.long_losses,
        harvested_losses=harvested,
        harvests=len(harvests),
        disallowed=sum((d.disallowed_loss_usd for d in in_year), ZERO),
        carried_in_short=base.carry_short,
        carried_in_long=base.carry_long,
        result=with_all,
        tax_saved=without.tax - with_all.tax,
        carryforward_value=carry_worth(rules, with_all) - carry_worth(rules, without),
        label=rules.tax_year_label(year),
    )
