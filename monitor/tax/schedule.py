"""Threshold schedules: harvest thresholds that change through the year, as data.

`[harvest] schedule` is a list of steps, each from a month-day (`starts = "12-01"`) to
the next step, replacing some of [harvest]'s thresholds: e.g. a deeper loss required
in January than in December (tax-rules.md, "What serious tools do"). Before the first
step of a year, [harvest]'s own values apply. A step change is a daily event: the
trigger index is rebuilt on the first tick of the day it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from monitor.tax.packs import month_day
from monitor.triggers import TriggerRules


@dataclass(frozen=True, slots=True)
class Step:
    """From (month, day) on: the thresholds it sets (None: keep [harvest]'s)."""

    month: int
    day: int
    min_loss_usd: float | None = None
    min_loss_pct: float | None = None
    min_net_benefit_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Steps in calendar order (empty: [harvest]'s thresholds all year)."""

    steps: tuple[Step, ...] = ()

    @classmethod
    def parse(cls, steps: list[tuple[str, float | None, float | None, float | None]]) -> Schedule:
        """From (starts "MM-DD", min_loss_usd, min_loss_pct, min_net_benefit_usd) tuples."""
        parsed = [Step(*month_day(starts), *values) for starts, *values in steps]
        return cls(tuple(sorted(parsed, key=lambda s: (s.month, s.day))))

    def step_on(self, day: date) -> Step | None:
        """The step in force on `day`, if any."""
        current = None
        for step in self.steps:
            if (step.month, step.day) <= (day.month, day.day):
                current = step
        return current

    def rules_on(self, day: date, base: TriggerRules) -> TriggerRules:
        """`base` with the thresholds of the step in force on `day`."""
        step = self.step_on(day)
        if step is None:
            return base
        return replace(
            base,
            min_loss_usd=base.min_loss_usd if step.min_loss_usd is None else step.min_loss_usd,
            min_loss_pct=base.min_loss_pct if step.min_loss_pct is None else step.min_loss_pct,
            min_net_benefit_usd=(
                base.min_net_benefit_usd
                if step.min_net_benefit_usd is None
                else step.min_net_benefit_usd
            ),
        )

    def next_change(self, day: date) -> date | None:
        """The first day after `day` on which a step starts (or the year's base resumes)."""
        if not self.steps:
            return None
        candidates = [date(day.year + 1, 1, 1)]
        for year in (day.year, day.year + 1):
            for step in self.steps:
                start = _safe_date(year, step.month, step.day)
                if start > day:
                    candidates.append(start)
        return min(candidates)


def _safe_date(year: int, month: int, day: int) -> date:
    """date(), with 29-31 clipped to the month's last day (02-29 in a common year -> 02-28)."""
    while True:
        try:
            return date(year, month, day)
        except ValueError:
            day -= 1
