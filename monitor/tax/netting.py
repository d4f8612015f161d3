"""The year's netting and the value of a loss, exactly (Decimal).

`outcome(rules, position)` applies the pack's netting method to a taxpayer's year:

- `us`: short-term losses offset short-term gains, long-term long-term, then the net
  of each side the other; a remaining net loss offsets up to the ordinary-income cap
  ($3,000, $1,500 married filing separately); the rest carries forward keeping its
  character, short-term used first against the cap (Schedule D; IRC 1211(b), 1212(b)).
- `pooled`: one pool of gains and losses (ca, uk); the inclusion rate applies to the
  net gain; an `allowance` exemption is deducted from it, losses carried in are used
  only down to the allowance (uk).
- `discount`: losses offset non-discount (short-term) gains first, then long-term
  gains, and the discount applies to what is left of those (au).
- `short_only`: only short-term units count (de); a `threshold` exemption taxes
  nothing below it and everything at or above it (all or nothing).

The value of harvesting (the `ytd` model) is the tax saved this year plus the
carryforward created, valued at `carryforward_value` times its flat rate.
`value_curve` gives that value as a piecewise-linear function of one lot's loss, the
form the trigger index needs to keep one trigger price per lot.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import combinations

from monitor.tax.disposal import Term
from monitor.tax.rules import ZERO, Position, TaxRules

SLOPE_STEP = Decimal("1e-15")  # the curve's thirds of a segment are inexact decimals:
VALUE_STEP = Decimal("1e-9")  # round their residue away (rates and cents are far coarser)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A tax year after netting: tax on gains, ordinary income offset, losses carried out."""

    taxable_gain: Decimal  # after netting, exemptions, discount and inclusion
    tax: Decimal  # on taxable_gain, minus the tax the ordinary-income offset saves
    ordinary_offset: Decimal
    carry_short: Decimal
    carry_long: Decimal


def outcome(rules: TaxRules, pos: Position) -> Outcome:
    """Net `pos` by the pack's method."""
    method = rules.pack.netting
    if method == "us":
        return _us(rules, pos)
    if method == "discount":
        return _discount(rules, pos)
    if method == "short_only":
        current = pos.short_gains - pos.short_losses
        return _pool(rules, current, pos.carry_short)
    current = pos.short_gains - pos.short_losses + pos.long_gains - pos.long_losses
    return _pool(rules, current, pos.carry_short + pos.carry_long)


def _us(rules: TaxRules, pos: Position) -> Outcome:
    s = pos.short_gains - pos.short_losses - pos.carry_short
    lt = pos.long_gains - pos.long_losses - pos.carry_long
    if s >= 0 and lt >= 0:
        return Outcome(s + lt, rules.short_rate * s + rules.long_rate * lt, ZERO, ZERO, ZERO)
    net = s + lt
    if net >= 0:  # one side's loss absorbed by the other side's gain
        rate = rules.long_rate if lt > 0 else rules.short_rate
        return Outcome(net, rate * net, ZERO, ZERO, ZERO)
    short_part = -s if s < 0 and lt < 0 else (-net if s < 0 else ZERO)
    long_part = -net - short_part
    offset = min(-net, rules.ordinary_income_cap)
    carry_short = short_part - min(short_part, offset)
    carry_long = long_part - max(ZERO, offset - short_part)
    return Outcome(ZERO, -rules.ordinary_rate * offset, offset, carry_short, carry_long)


def _discount(rules: TaxRules, pos: Position) -> Outcome:
    losses = pos.short_losses + pos.long_losses + pos.carry_short + pos.carry_long
    short_left = max(ZERO, pos.short_gains - losses)
    losses_left = max(ZERO, losses - pos.short_gains)
    long_left = max(ZERO, pos.long_gains - losses_left)
    carry = max(ZERO, losses_left - pos.long_gains)
    taxable = short_left + long_left * (1 - rules.long_term_discount)
    return Outcome(taxable, rules.short_rate * taxable, ZERO, carry, ZERO)


def _pool(rules: TaxRules, current: Decimal, carry: Decimal) -> Outcome:
    kind, amount = rules.pack.exemption, rules.annual_exemption
    if current <= 0:
        net, carry_out = ZERO, carry - current
    elif kind == "allowance":  # carried-in losses only down to the allowance (uk)
        used = min(carry, max(ZERO, current - amount))
        net, carry_out = max(ZERO, current - used - amount), carry - used
    elif kind == "threshold" and current < amount:  # all or nothing (de)
        net, carry_out = ZERO, carry
    else:
        used = min(carry, current)
        net, carry_out = current - used, carry - used
    taxable = net * rules.inclusion_rate
    return Outcome(taxable, rules.short_rate * taxable, ZERO, carry_out, ZERO)


def carry_worth(rules: TaxRules, result: Outcome) -> Decimal:
    """Today's value of the losses carried out of the year."""
    flat = result.carry_short * rules.flat_rate("short") + result.carry_long * rules.flat_rate(
        "long"
    )
    return rules.carryforward_value * flat


def loss_value(rules: TaxRules, pos: Position, short_loss: Decimal, long_loss: Decimal) -> Decimal:
    """What realizing net losses `short_loss` and `long_loss` (< 0: gains) is worth.

    flat: each loss at its flat rate. ytd: tax saved this year plus carryforward created,
    against `pos`, the year so far.
    """
    if rules.value_model == "flat":
        return rules.flat_rate("short") * short_loss + rules.flat_rate("long") * long_loss
    after = pos.plus("short", -short_loss).plus("long", -long_loss)
    before_o, after_o = outcome(rules, pos), outcome(rules, after)
    return before_o.tax - after_o.tax + carry_worth(rules, after_o) - carry_worth(rules, before_o)


@dataclass(frozen=True, slots=True)
class ValueCurve:
    """V(L): the value of one more loss L >= 0 of one character, piecewise linear.

    Segment k covers [starts[k], starts[k+1]) (the last one is unbounded); on it
    V(L) = values[k] + slopes[k] * (L - starts[k]). `values` are right limits, so a jump
    (the de threshold) sits at a segment start.
    """

    starts: tuple[Decimal, ...]
    values: tuple[Decimal, ...]
    slopes: tuple[Decimal, ...]

    def at(self, loss: Decimal) -> Decimal:
        k = max(i for i, start in enumerate(self.starts) if start <= loss) if loss > 0 else 0
        return self.values[k] + self.slopes[k] * (loss - self.starts[k])


def _figures(rules: TaxRules, pos: Position, term: Term) -> list[Decimal]:
    """Signed amounts whose subset sums include every loss where V changes slope or jumps."""
    method = rules.pack.netting
    if method == "us":
        s = pos.short_gains - pos.short_losses - pos.carry_short
        lt = pos.long_gains - pos.long_losses - pos.carry_long
        return [s, lt, rules.ordinary_income_cap]
    if method == "discount":
        losses = pos.short_losses + pos.long_losses + pos.carry_short + pos.carry_long
        return [pos.short_gains - losses, pos.long_gains]
    if method == "short_only":
        current = pos.short_gains - pos.short_losses
        return [current, -pos.carry_short, -rules.annual_exemption]
    current = pos.short_gains - pos.short_losses + pos.long_gains - pos.long_losses
    return [current, -(pos.carry_short + pos.carry_long), -rules.annual_exemption]


def value_curve(rules: TaxRules, pos: Position, term: Term) -> ValueCurve:
    """The ytd value of one more loss of character `term` against `pos` (flat: one line)."""
    if rules.value_model == "flat" or (term == "long" and rules.pack.long_term_exempt):
        rate = rules.flat_rate(term)
        return ValueCurve((ZERO,), (ZERO,), (rate,))
    figures = _figures(rules, pos, term)
    points = {ZERO}
    for size in range(1, len(figures) + 1):
        for combo in combinations(figures, size):
            total = sum(combo, ZERO)
            if total > 0:
                points.add(total)
    starts = sorted(points)

    def value(loss: Decimal) -> Decimal:
        if term == "short":
            return loss_value(rules, pos, loss, ZERO)
        return loss_value(rules, pos, ZERO, loss)

    values, slopes = [], []
    for k, start in enumerate(starts):
        width = starts[k + 1] - start if k + 1 < len(starts) else Decimal(3)
        a, b = start + width / 3, start + 2 * width / 3
        slope = ((value(b) - value(a)) / (b - a)).quantize(SLOPE_STEP)
        values.append((value(a) - slope * (a - start)).quantize(VALUE_STEP))
        slopes.append(slope)
    return ValueCurve(tuple(starts), tuple(values), tuple(slopes))
