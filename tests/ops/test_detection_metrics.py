"""Detection's ops metrics moved by a real tick through a real Detector: lots under water,
unrealized loss, and the loss and tax savings of the harvest alerts emitted."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import REGISTRY

from monitor.detect import build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.ticks import Tick

# ZOPS is this test's own asset, so the global registry's counters start at zero for it.
LOTS = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
Z1,a,w,ZOPS,10,1000,2026-01-01
Z2,a,w,ZOPS,5,250,2026-01-01
Z3,b,v,ZOPS,1,10,2026-01-01
"""


def value(name: str, asset: str) -> float:
    return REGISTRY.get_sample_value(name, {"asset": asset}) or 0.0


def test_a_crossing_tick_moves_the_detection_metrics() -> None:
    settings = load_settings(overrides={"prices.hold_s": 0})  # one venue's tick, at once
    detector = build_detector(settings, parse_portfolio(io.StringIO(LOTS), "ops.csv"))
    ts = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
    # At 40: Z1 (unit 100) loses 600, Z2 (unit 50) loses 50, Z3 (unit 10) is in profit.
    alerts = detector.on_tick(Tick("binance", "ZOPS/USDT", "ZOPS", "USDT", 40.0, ts, ts * 10**6))
    assert value("hm_lots_under_water", "ZOPS") == 2
    assert value("hm_unrealized_loss_usd", "ZOPS") == 650.0
    # Only Z1 clears min_loss_usd (100): one alert, loss 600, tax 0.37 * 600 = 222.
    assert [a.lot_ids for a in alerts] == [["Z1"]]
    assert Decimal(alerts[0].loss_usd) == 600
    assert value("hm_alerted_loss_usd_total", "ZOPS") == 600.0
    assert value("hm_alerted_tax_savings_usd_total", "ZOPS") == 222.0
