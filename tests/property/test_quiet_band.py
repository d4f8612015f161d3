"""The lot book's quiet band (a tick that can neither fire nor re-arm skips the searches)
changes nothing: the same price path through a book with the band and through one that
always runs the full path gives the same crossings and the same arm state, tick by tick."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.book import AssetIndex, LotBook, build_book
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.triggers import epoch_day

TODAY = date(2026, 3, 2)


class FullPathBook(LotBook):
    """A book whose band is always empty: every tick runs both searches."""

    @staticmethod
    def _band(idx: AssetIndex) -> None:
        idx.fire_above, idx.rearm_from = float("inf"), float("-inf")


def portfolio(units: list[float], ages: list[int]) -> str:
    rows = ["lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at"]
    for i, (unit, age) in enumerate(zip(units, ages, strict=False)):
        acquired = TODAY - timedelta(days=age)
        rows.append(f"L{i},a{i % 2},w,BTC,2,{unit * 2:.2f},{acquired.isoformat()}")
    return "\n".join(rows) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    units=st.lists(st.floats(500, 2_000), min_size=1, max_size=12),
    ages=st.lists(st.integers(1, 400), min_size=12, max_size=12),
    moves=st.lists(st.floats(-0.03, 0.03), min_size=1, max_size=150),
    rearm_pct=st.sampled_from([0.0, 0.001, 0.02]),
    cooldown_s=st.sampled_from([0, 30]),
    value_model=st.sampled_from(["flat", "ytd"]),
)
def test_band_gives_the_full_paths_crossings(
    units: list[float],
    ages: list[int],
    moves: list[float],
    rearm_pct: float,
    cooldown_s: int,
    value_model: str,
) -> None:
    config = load_settings(
        env={},
        overrides={
            "harvest": {"rearm_pct": rearm_pct, "cooldown_s": cooldown_s, "deadline_days": 60},
            "tax": {"value_model": value_model},
        },
    )
    frame = parse_portfolio(io.StringIO(portfolio(units, ages)), "band.csv")
    banded = build_book(config, frame)
    full = FullPathBook(frame, banded.rules, rearm_pct=rearm_pct, cooldown_s=cooldown_s)
    ts = epoch_day(TODAY) * 86_400_000
    price = units[0]  # start at a lot's basis: its trigger is a few % below
    for i, move in enumerate(moves):
        price *= 1 + move
        at = ts + i * 10_000
        got, want = banded.crossings("BTC", price, at), full.crossings("BTC", price, at)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert np.array_equal(got.rows, want.rows)
            assert np.array_equal(got.deadline_rows, want.deadline_rows)
            assert got.suppressed == want.suppressed
        a, b = banded._assets["BTC"], full._assets["BTC"]
        assert (a.armed_end, a.dl_end) == (b.armed_end, b.dl_end)


def test_a_nan_trigger_empties_the_band() -> None:
    frame = parse_portfolio(io.StringIO(portfolio([1_000.0], [10])), "nan.csv")
    book = build_book(load_settings(env={}), frame)
    book.crossings("BTC", 2_000.0, epoch_day(TODAY) * 86_400_000)  # builds the index
    idx = book._assets["BTC"]
    idx.triggers, idx.armed_end = np.array([1.0, 2.0, np.nan]), 3
    LotBook._band(idx)
    assert idx.fire_above == float("inf")
    idx.armed_end = 2  # the NaN lot disarmed: waits to re-arm, never re-arms
    LotBook._band(idx)
    assert (idx.fire_above, idx.rearm_from) == (2.0, float("-inf"))
