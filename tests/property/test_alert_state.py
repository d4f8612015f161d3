"""Each lot's alert state (armed or waiting to re-arm, last alert) survives what rebuilds
the trigger index and what restarts the process.

- Against a second, simple implementation (one Python flag and one time per lot, the
  README's rule read literally): an alerted lot alerts again only after the price
  climbed back to trigger * (1 + rearm_pct) and `cooldown_s` passed, also across the
  daily rebuilds a price path over several days causes (lots turning long-term move
  their triggers); with `remind_after_s`, a lot still under water that long after its
  last alert is reminded, once per period.
- A path cut in two with the state written to a real SQLite ledger and read back into a
  fresh book in between gives the crossings of the uncut path.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.book import LotBook, build_book
from monitor.ledger import Ledger
from monitor.portfolio import parse_portfolio
from monitor.settings import Settings, load_settings
from monitor.triggers import epoch_day

START = date(2026, 3, 2)
STEP_MS = 3 * 3_600_000  # a tick every 3 hours: a path of 40 ticks spans 5 days


def portfolio(units: list[float], ages: list[int]) -> str:
    """BTC lots; ages near a year, so some turn long-term (new trigger) during the path."""
    rows = ["lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at"]
    for i, (unit, age) in enumerate(zip(units, ages, strict=False)):
        acquired = START - timedelta(days=age)
        rows.append(f"L{i},a{i % 2},w,BTC,2,{unit * 2:.2f},{acquired.isoformat()}")
    return "\n".join(rows) + "\n"


def config(rearm_pct: float, cooldown_s: int, remind_s: int = 0) -> Settings:
    harvest = {"rearm_pct": rearm_pct, "cooldown_s": cooldown_s, "remind_after_s": remind_s}
    return load_settings(env={}, overrides={"harvest": harvest})


class Reference:
    """The README's rule, one lot at a time, with the trigger in force on the tick's day;
    with `remind_s`, a lot alerted that long ago, never re-armed and under water again (or
    still) is reminded."""

    def __init__(self, lots: int, rearm_pct: float, cooldown_s: int, remind_s: int) -> None:
        self.armed = [True] * lots
        self.last: list[int | None] = [None] * lots
        self.factor = 1 + rearm_pct
        self.cooldown_ms = cooldown_s * 1000
        self.remind_ms = remind_s * 1000

    def tick(self, triggers: list[float], price: float, ts: int) -> Crossed:
        fired, suppressed, reminded = set(), 0, set()
        for i, trigger in enumerate(triggers):
            if not self.armed[i] and trigger <= price / self.factor:
                self.armed[i] = True
            if self.armed[i] and trigger >= price:
                self.armed[i] = False
                last = self.last[i]
                if last is None or last + self.cooldown_ms <= ts:
                    fired.add(i)
                    self.last[i] = ts
                else:
                    suppressed += 1
            last = self.last[i]
            under_water = not self.armed[i] and trigger >= price
            if self.remind_ms and under_water and last is not None and last + self.remind_ms <= ts:
                reminded.add(i)
                self.last[i] = ts
        return fired, suppressed, reminded


def triggers_on(book: LotBook, ts: int) -> list[float]:
    """Each lot's trigger on the tick's day (NaN: never triggers)."""
    return [np.nan if t is None else t for t in book.lot_triggers(ts)["trigger_usd"].to_list()]


Crossed = tuple[set[int], int, set[int]]  # fired, crossed inside the cooldown, reminded


def crossed(book: LotBook, price: float, ts: int) -> Crossed:
    crossing = book.crossings("BTC", price, ts)
    if crossing is None:
        return set(), 0, set()
    reminded = set(crossing.reminder_rows.tolist())
    return set(crossing.rows.tolist()), crossing.suppressed, reminded


PATHS = {
    "units": st.lists(st.floats(500, 2_000), min_size=1, max_size=10),
    "ages": st.lists(st.integers(355, 370), min_size=10, max_size=10),
    "moves": st.lists(st.floats(-0.04, 0.04), min_size=2, max_size=40),
    "rearm_pct": st.sampled_from([0.0, 0.01, 0.05]),
    "cooldown_s": st.sampled_from([0, 3 * 3600, 24 * 3600]),
    "remind_s": st.sampled_from([0, 0, 6 * 3600, 30 * 3600]),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**PATHS)
def test_rebuilds_keep_each_lots_arm_state(
    units: list[float],
    ages: list[int],
    moves: list[float],
    rearm_pct: float,
    cooldown_s: int,
    remind_s: int,
) -> None:
    frame = parse_portfolio(io.StringIO(portfolio(units, ages)), "state.csv")
    book = build_book(config(rearm_pct, cooldown_s, remind_s), frame)
    reference = Reference(frame.height, rearm_pct, cooldown_s, remind_s)
    ts, price = epoch_day(START) * 86_400_000, units[0] * 0.97
    for move in moves:
        price *= 1 + move
        ts += STEP_MS
        want = reference.tick(triggers_on(book, ts), price, ts)
        assert crossed(book, price, ts) == want


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**PATHS, cut=st.floats(0.0, 1.0))
def test_a_restart_on_the_ledger_changes_no_crossing(
    units: list[float],
    ages: list[int],
    moves: list[float],
    rearm_pct: float,
    cooldown_s: int,
    remind_s: int,
    cut: float,
) -> None:
    settings_ = config(rearm_pct, cooldown_s, remind_s)
    frame = parse_portfolio(io.StringIO(portfolio(units, ages)), "state.csv")
    path: list[tuple[float, int]] = []
    ts, price = epoch_day(START) * 86_400_000, units[0] * 0.97
    for move in moves:
        price *= 1 + move
        ts += STEP_MS
        path.append((price, ts))
    whole = build_book(settings_, frame)
    want = [crossed(whole, p, t) for p, t in path]
    at = int(cut * len(path))
    with TemporaryDirectory() as scratch:
        ledger = Ledger(Path(scratch) / "ledger.sqlite").open()
        first = build_book(settings_, frame)
        got = [crossed(first, p, t) for p, t in path[:at]]
        ledger.alerts.save_lot_state(first.take_state())
        ledger.close()
        ledger = Ledger(Path(scratch) / "ledger.sqlite").open()
        second = build_book(settings_, frame)
        second.restore(ledger.alerts.lot_state())
        ledger.close()
        got += [crossed(second, p, t) for p, t in path[at:]]
    assert got == want
