"""The ledger's per-lot alert state: written with the alerts (all or nothing), read back
exactly, restored into a book by lot_id."""

from __future__ import annotations

import io
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from monitor.book import build_book
from monitor.ledger import Ledger
from monitor.lot_columns import NEVER, LotAlertState
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings

LOTS = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct,w1,BTC,1,90000,2026-04-01
L2,acct,w1,BTC,2,100000,2026-04-02
L3,acct,w1,ETH,10,40000,2026-05-01
"""


def state(*rows: tuple[str, bool, int, bool]) -> LotAlertState:
    return LotAlertState(
        [r[0] for r in rows],
        np.array([r[1] for r in rows], dtype=np.bool_),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.bool_),
    )


def test_state_round_trips_and_the_newest_write_wins(tmp_path: Path) -> None:
    with closing(Ledger(tmp_path / "l.sqlite").open()) as ledger:
        ledger.alerts.save_lot_state(state(("L1", False, 1_000, False), ("L3", True, NEVER, True)))
        ledger.alerts.save_lot_state(state(("L1", True, 2_000, False)))
        kept = ledger.alerts.lot_state().sort("lot_id")
    assert kept.rows() == [("L1", True, 2_000, False), ("L3", True, None, True)]


def test_a_failed_alert_write_leaves_the_state_unwritten(tmp_path: Path) -> None:
    with closing(Ledger(tmp_path / "l.sqlite").open()) as ledger:
        with pytest.raises(TypeError):  # a body that is not bytes fails inside the transaction
            ledger.alerts.record_alerts(
                [("hma_1", "2026-01-01T00:00:00.000Z", None)],  # type: ignore[list-item]
                state(("L1", False, 1_000, False)),
            )
        assert ledger.alerts.lot_state().height == 0
        assert ledger.alerts.last_seq() == 0
        fresh = ledger.alerts.record_alerts(
            [("hma_1", "2026-01-01T00:00:00.000Z", b"{}")], state(("L1", False, 1_000, False))
        )
        assert fresh == ["hma_1"]
        assert ledger.alerts.lot_state().rows() == [("L1", False, 1_000, False)]


def test_restore_sets_the_lots_by_id_and_ignores_unknown_ones(tmp_path: Path) -> None:
    frame = parse_portfolio(io.StringIO(LOTS), "t.csv")
    with closing(Ledger(tmp_path / "l.sqlite").open()) as ledger:
        ledger.alerts.save_lot_state(
            state(("L3", False, 5_000, True), ("GONE", False, 1, False), ("L1", True, 7, False))
        )
        kept = ledger.alerts.lot_state()
    book = build_book(load_settings(env={}), frame)
    assert book.restore(kept) == 2
    assert book.armed.tolist() == [True, True, False]
    assert book.last_alert_ms.tolist() == [7, NEVER, 5_000]
    assert book.deadline_sent.tolist() == [False, False, True]
    assert len(book.take_state()) == 0  # restoring is not a change to write back


def test_changes_nobody_took_stay_bounded_and_complete() -> None:
    """Without a ledger nobody takes the state: L1 and L2 fire and re-arm on every tick of
    a long swing; the marks fold into one mask, and a late take still names both lots,
    once each, with their state now."""
    frame = parse_portfolio(io.StringIO(LOTS), "t.csv")
    book = build_book(load_settings(env={}, overrides={"harvest.cooldown_s": 0}), frame)
    ts = 1_790_000_000_000
    for i in range(6_000):  # 45,000 is under both BTC triggers, 95,000 above both * 1.02
        book.crossings("BTC", 45_000.0 if i % 2 == 0 else 95_000.0, ts + i)
    assert sum(part.size for part in book._unsaved) <= 4096
    taken = book.take_state()
    assert taken.lot_ids == ["L1", "L2"]
    assert taken.armed.tolist() == [True, True]  # the last tick re-armed them
    assert taken.last_alert_ms.tolist() == [ts + 5_998, ts + 5_998]
    assert len(book.take_state()) == 0


async def test_state_whose_write_failed_goes_with_the_next_write(tmp_path: Path) -> None:
    """The ledger fails while L1 alerts (the alert still goes out); once it is back, the
    next state write (each second, or at stop) carries L1's state."""
    from monitor.alerts.jsonl import JsonLinesSink
    from monitor.alerts.recording import RecordingSink
    from monitor.detect import build_detector
    from monitor.stages import emit, save_state
    from streams.ticks import Tick

    frame = parse_portfolio(io.StringIO(LOTS), "t.csv")
    one_venue = load_settings(env={}, overrides={"prices.hold_s": 0})  # acted on at once
    detector = build_detector(one_venue, frame, event_time=True)
    ledger = Ledger(tmp_path / "l.sqlite").open()
    ledger.close()  # every call fails now
    out = io.BytesIO()
    sinks = [RecordingSink(ledger.alerts), JsonLinesSink(stream=out)]
    ts = 1_790_000_000_000
    btc = Tick("binance", "BTC/USD", "BTC", "USD", 80_000.0, ts, ts * 1_000_000)
    alerts = detector.on_tick(btc)
    assert [a.lot_ids for a in alerts] == [["L1"]]
    assert await emit(sinks, alerts, 0, lot_state=detector.take_state()) == 1
    ledger.open()
    try:
        assert ledger.alerts.lot_state().height == 0
        save_state(sinks, detector)
        assert ledger.alerts.lot_state().rows() == [("L1", False, ts, False)]
    finally:
        ledger.close()
