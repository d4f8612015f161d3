"""After a fill the live book learns what the tax engine needs: the realized loss (ytd
value of the next loss) and a rebuy inside a do-not-buy window (a wash_warning alert that
goes out with the next tick)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.detect import build_detector
from monitor.execute.book_sync import BookSync
from monitor.execute.fills import BookChange
from monitor.ledger import Ledger
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.tax.disposal import Disposal
from streams.ticks import Tick

LOTS = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct,w1,ETH,10,40000,2026-05-01
L2,acct,w1,BTC,1,90000,2026-04-01
"""


def sale(loss: str) -> Disposal:
    return Disposal(
        lot_id="L1",
        account="acct",
        wallet="w1",
        asset="ETH",
        quantity=Decimal(10),
        acquired_on=date(2026, 5, 1),
        sold_on=date(2026, 11, 2),
        proceeds_usd=Decimal(40000) - Decimal(loss),
        cost_basis_usd=Decimal(40000),
        term="short",
        harvest=True,
    )


def tick(price: float, ts_ms: int, base: str = "BTC") -> Tick:
    return Tick("binance", f"{base}/USD", base, "USD", price, ts_ms, ts_ms * 1_000_000)


def setup(tmp_path: Path, **overrides: object) -> tuple[BookSync, Ledger]:
    settings = load_settings(None, env={}, overrides=dict(overrides))
    lots = parse_portfolio(io.StringIO(LOTS), "t.csv")
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    ledger.import_frame(lots, "t.csv")
    detector = build_detector(settings, ledger.open_lots(), event_time=True)
    return BookSync(settings, detector, ledger), ledger


def test_a_rebuy_inside_the_wash_sale_window_raises_a_warning_alert(tmp_path: Path) -> None:
    sync, ledger = setup(tmp_path, **{"tax.wash_sale_days": 30})
    try:
        sync.apply(BookChange("i1", "acct", "w1", "ETH", disposals=(sale("8000"),)))
        assert sync.detector.pending == []
        bought = datetime(2026, 11, 20, 12, tzinfo=UTC)  # 18 days after the sale
        sync.apply(
            BookChange(
                "i1",
                "acct",
                "w1",
                "ETH",
                opened_lot_id="R1",
                opened_quantity=Decimal(10),
                opened_cost_usd=Decimal(32000),
                opened_at=bought,
            )
        )
        [warning] = sync.detector.pending
        assert warning.kind == "wash_warning" and warning.asset == "ETH"
        assert warning.lot_ids == ["R1"]
        # It goes out with the next tick, once.
        out = sync.detector.on_tick(tick(95_000.0, int(bought.timestamp() * 1000)))
        assert [a.kind for a in out] == ["wash_warning"]
        assert sync.detector.on_tick(tick(95_000.0, int(bought.timestamp() * 1000) + 1)) == []
    finally:
        ledger.close()


def test_no_window_no_warning(tmp_path: Path) -> None:
    sync, ledger = setup(tmp_path)  # us pack: no wash-sale rule for crypto by default
    try:
        sync.apply(BookChange("i1", "acct", "w1", "ETH", disposals=(sale("8000"),)))
        sync.apply(
            BookChange(
                "i1",
                "acct",
                "w1",
                "ETH",
                opened_lot_id="R1",
                opened_quantity=Decimal(10),
                opened_cost_usd=Decimal(32000),
                opened_at=datetime(2026, 11, 3, tzinfo=UTC),
            )
        )
        assert sync.detector.pending == []
    finally:
        ledger.close()


def test_a_realized_loss_moves_the_ytd_position(tmp_path: Path) -> None:
    sync, ledger = setup(tmp_path, **{"tax.value_model": "ytd"})
    try:
        before = sync.detector.book.position("acct")
        sync.apply(BookChange("i1", "acct", "w1", "ETH", disposals=(sale("8000"),)))
        after = sync.detector.book.position("acct")
        assert after != before
        assert after == before.realize([sale("8000")])
    finally:
        ledger.close()


@pytest.mark.parametrize("value_model", ["flat", "ytd"])
def test_a_fill_rearms_no_lot(tmp_path: Path, value_model: str) -> None:
    """L2 (1 BTC at 90,000) alerted at 80,000; a fill of another lot rebuilds the book (and,
    with the ytd model, moves the year-to-date position, which rebuilds every index again);
    two hours later (past the hour of cooldown), still under water and never re-armed, L2
    is not alerted again."""
    # One venue's ticks, acted on at once ([prices] hold_s = 0).
    sync, ledger = setup(tmp_path, **{"tax.value_model": value_model, "prices.hold_s": 0})
    try:
        t0 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)
        [alert] = sync.detector.on_tick(tick(80_000.0, t0))
        assert alert.lot_ids == ["L2"]
        sync.apply(BookChange("i1", "acct", "w1", "ETH", disposals=(sale("8000"),)))
        assert sync.detector.on_tick(tick(79_000.0, t0 + 7_200_000)) == []
        sync.detector.on_tick(tick(95_000.0, t0 + 7_300_000))  # back above: re-armed
        [again] = sync.detector.on_tick(tick(79_000.0, t0 + 7_400_000))
        assert again.lot_ids == ["L2"]
    finally:
        ledger.close()
