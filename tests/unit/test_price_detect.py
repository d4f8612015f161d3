"""Detection on the consensus price: the debounce in event time, venue counts on alerts,
and a flash wick on one venue that must not alert."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.schema import encode_alert
from monitor.detect import Detector, build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.ticks import Tick

# On 2026-02-10 at default rules: A1 (2 BTC, basis 100,000) and B1 (1 BTC, basis 60,000)
# fire at 47,000; nothing fires at 62,000.
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2026-01-10
B1,acct-b,bn-1,BTC,1,60000,2025-06-01
"""
T = int(datetime(2026, 2, 10, tzinfo=UTC).timestamp() * 1000)


def tick(venue: str, price: float, at_ms: int, symbol: str = "BTC/USD") -> Tick:
    base, quote = symbol.split("/")
    return Tick(venue, symbol, base, quote, price, T + at_ms, (T + at_ms) * 1_000_000)


def detector(**overrides: Any) -> Detector:
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    return build_detector(load_settings(overrides=overrides), lots, event_time=True)


def at_once(**overrides: Any) -> Detector:
    """A detector that acts on one venue's price at once ([prices] hold_s = 0)."""
    return detector(**{"prices.hold_s": 0, **overrides})


def test_crossing_alerts_only_once_it_has_lasted_confirm_ms() -> None:
    d = at_once(**{"prices.confirm_ms": 2000})
    assert d.on_tick(tick("binance", 47_000.0, 0)) == []
    assert d.on_tick(tick("binance", 47_000.0, 1999)) == []
    alerts = d.on_tick(tick("binance", 47_000.0, 2000))
    assert sorted(a.account for a in alerts) == ["acct-a", "acct-b"]
    assert alerts[0].tick_ts == "2026-02-10T00:00:02.000Z"


def test_a_dip_that_comes_back_inside_confirm_ms_alerts_nothing() -> None:
    d = at_once(**{"prices.confirm_ms": 2000})
    d.on_tick(tick("binance", 62_000.0, 0))
    d.on_tick(tick("binance", 62_000.0, 2000))
    assert d.on_tick(tick("binance", 47_000.0, 2500)) == []
    assert d.on_tick(tick("binance", 62_000.0, 3000)) == []  # back up after 0.5 s
    assert d.on_tick(tick("binance", 47_000.0, 4000)) == []  # 62,000 still in the window
    assert d.on_tick(tick("binance", 47_000.0, 5999)) == []
    assert len(d.on_tick(tick("binance", 47_000.0, 6000))) == 2  # 47,000 since 4000


def test_confirm_ms_zero_alerts_on_the_first_tick() -> None:
    assert len(at_once().on_tick(tick("binance", 47_000.0, 0))) == 2


def test_single_venue_alerts_once_its_price_persisted_and_says_so() -> None:
    d = detector(**{"prices.hold_s": 30})
    assert d.on_tick(tick("kraken", 47_000.0, 0)) == []  # one venue, not yet 30 s of it
    assert d.on_tick(tick("kraken", 47_010.0, 20_000)) == []
    alerts = d.on_tick(tick("kraken", 47_020.0, 30_000))
    assert [(a.venues, a.confirmed_by, a.consensus_age_ms) for a in alerts] == [
        (1, "persistence", 0),
        (1, "persistence", 0),
    ]


def test_three_agreeing_venues_are_counted_on_the_alert() -> None:
    # Triggers on 2026-02-10: A1 47,500 (5% under its 50,000 unit basis), B1 57,000.
    d = at_once()
    assert [a.lot_ids for a in d.on_tick(tick("binance", 47_600.0, 0, "BTC/USDT"))] == [["B1"]]
    assert d.on_tick(tick("coinbase", 47_550.0, 10)) == []  # median 47,575
    assert d.on_tick(tick("kraken", 47_300.0, 20)) == []  # median 47,550
    alerts = d.on_tick(tick("binance", 47_400.0, 30, "BTC/USDT"))  # median 47,400
    assert [(a.lot_ids, a.venues, a.price) for a in alerts] == [(["A1"], 3, "47400")]


def test_a_fall_on_two_of_three_venues_alerts_at_their_median() -> None:
    d = detector()
    d.on_tick(tick("binance", 62_000.0, 0, "BTC/USDT"))
    d.on_tick(tick("coinbase", 62_050.0, 10))
    d.on_tick(tick("kraken", 62_020.0, 20))
    assert d.on_tick(tick("binance", 47_000.0, 100, "BTC/USDT")) == []  # outlier vs 62,0xx
    alerts = d.on_tick(tick("coinbase", 47_020.0, 110))
    # Middle of (47,000, 47,020, 62,020) is 47,020: binance and coinbase agree, median 47,010.
    assert [(a.venues, a.price) for a in alerts] == [(2, "47010"), (2, "47010")]


def test_flash_wick_on_one_of_three_venues_alerts_nothing() -> None:
    d = detector()
    d.on_tick(tick("binance", 62_000.0, 0, "BTC/USDT"))
    d.on_tick(tick("coinbase", 62_050.0, 10))
    d.on_tick(tick("kraken", 62_020.0, 20))
    for i in range(5):  # kraken prints 40,000 five times in a row
        assert d.on_tick(tick("kraken", 40_000.0, 30 + i)) == []
    assert d.on_tick(tick("binance", 62_010.0, 40, "BTC/USDT")) == []
    assert d.prices.latest["BTC"].venues == 2
    assert d.prices.rejected[("kraken", "outlier")] == 5


def test_venues_is_appended_after_the_original_alert_fields() -> None:
    alert = at_once().on_tick(tick("kraken", 47_000.0, 0))[0]
    keys = list(json.loads(encode_alert(alert)))
    assert keys[:2] == ["schema", "alert_id"]
    end = keys.index("emitted_at")
    assert keys[end - 1 :] == [
        "tick_ts",
        "emitted_at",
        "venues",
        "consensus_age_ms",
        "confirmed_by",
        "plan",
    ]
