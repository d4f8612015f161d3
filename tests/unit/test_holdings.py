"""A lot is part of the book from its acquisition time, in the ticks' time (Holdings)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import polars as pl

from monitor.detect import build_detector
from monitor.holdings import NEVER_MS, Holdings
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.ticks import Tick

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
OLD,a,w,BTC,1,100000,2025-01-10
NEW,a,w,BTC,1,100000,2026-03-01T12:00:00Z
ETH,a,w,ETH,1,4000,2026-03-02
"""


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def tick(price: float, at: str) -> Tick:
    ts = ms(at)
    return Tick("binance", "BTC/USDT", "BTC", "USDT", price, ts, ts * 1_000_000)


def lots() -> pl.DataFrame:
    return parse_portfolio(io.StringIO(PORTFOLIO), "p.csv")


def test_the_cut_moves_forward_with_event_time_never_back() -> None:
    held = Holdings(lots(), ms("2026-03-01T11:59:59"))
    assert held.held()["lot_id"].to_list() == ["OLD"]
    assert (held.pending, held.next_ms) == (2, ms("2026-03-01T12:00:00"))
    assert held.advance(ms("2026-03-01T11:59:59.500")) == []
    assert held.advance(ms("2026-03-01T12:00:00")) == ["NEW"]  # at its time, not after
    assert held.advance(ms("2026-01-01T00:00:00")) == []  # an older tick takes nothing back
    assert held.held()["lot_id"].to_list() == ["OLD", "NEW"]
    assert held.advance(ms("2027-01-01T00:00:00")) == ["ETH"]
    assert (held.pending, held.next_ms) == (0, NEVER_MS)


def test_a_lot_alerts_only_from_its_acquisition_time() -> None:
    """Both BTC lots cost 100000; at 50000 both are deep under water. Before NEW's time
    only OLD is alerted (and planned); from its time on, NEW too."""
    settings = load_settings(overrides={"prices.hold_s": 0})
    detector = build_detector(settings, lots(), event_time=True, as_of_ms=ms("2026-03-01T11:00"))
    before = detector.on_tick(tick(50000, "2026-03-01T11:30:00"))
    assert [a.lot_ids for a in before] == [["OLD"]]
    assert detector.book.lot_count == 1
    after = detector.on_tick(tick(50000, "2026-03-01T12:00:00"))
    assert [a.lot_ids for a in after] == [["NEW"]]  # OLD is disarmed: it alerted already
    assert detector.book.lot_count == 2


def test_restored_alert_state_reaches_a_lot_that_joins_later() -> None:
    """The ledger says NEW alerted at 12:05 and is disarmed: after a restart whose ticks
    start before NEW's time, NEW joins the book with that state and does not alert again."""
    settings = load_settings(overrides={"prices.hold_s": 0})
    detector = build_detector(settings, lots(), event_time=True, as_of_ms=ms("2026-03-01T11:00"))
    state = pl.DataFrame(
        {
            "lot_id": ["NEW"],
            "armed": [False],
            "last_alert_ms": [ms("2026-03-01T12:05:00")],
            "deadline_sent": [False],
        }
    )
    detector.restore_state(state)
    detector.on_tick(tick(50000, "2026-03-01T11:30:00"))  # OLD alerts
    assert detector.on_tick(tick(50000, "2026-03-01T12:10:00")) == []
    assert detector.book.lot_count == 2
