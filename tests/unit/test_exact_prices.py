"""Prices are read exactly at the edge: the venue's digits reach `Tick.exact_price()` without
passing through float64 (issue 11, item 8). The prices below have more significant digits
than a float64 holds, so any float on the way would show."""

from __future__ import annotations

import io
from decimal import Decimal

import msgspec
import pytest

from monitor.detect import build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.feeds.binance import BinanceProtocol
from streams.feeds.coinbase import CoinbaseProtocol
from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenProtocol
from streams.ticks import Tick, decode_tick, encode_tick
from tests.unit.recording_link import RecordingLink

RECV = 1_695_628_177_800_000_000
DIGITS = "26500.123456789012345678"  # 24 significant digits; float64 keeps about 17

MESSAGES = {
    "binance": (
        '{"stream": "btcusd@trade", "data": {"e": "trade", "E": 1695628177708, "s": "BTCUSD", '
        f'"t": 1, "p": "{DIGITS}", "q": "0.01", "T": 1695628177708, "m": true, "M": true}}}}'
    ),
    "coinbase": (
        '{"channel": "ticker", "timestamp": "2023-09-25T07:49:37.708706123Z", '
        '"sequence_num": 0, "events": [{"type": "update", "tickers": [{"type": "ticker", '
        f'"product_id": "BTC-USD", "price": "{DIGITS}"}}]}}]}}'
    ),
    "kraken": (
        '{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "buy", '
        f'"price": {DIGITS}, "qty": 0.01, "ord_type": "market", "trade_id": 4665906, '
        '"timestamp": "2023-09-25T07:49:37.708706Z"}]}'
    ),
}
PROTOCOLS = {"binance": BinanceProtocol, "coinbase": CoinbaseProtocol, "kraken": KrakenProtocol}


@pytest.mark.parametrize("venue", list(MESSAGES))
def test_the_venues_digits_reach_the_exact_price(venue: str) -> None:
    channel = "ticker" if venue == "coinbase" else "trade"
    config = FeedConfig(venue, ("BTC/USD",), channel=channel)
    session = PROTOCOLS[venue](config).session(RecordingLink())  # type: ignore[abstract]
    out = session.handle(MESSAGES[venue].encode(), RECV)
    assert isinstance(out, list) and len(out) == 1
    assert out[0].exact_price() == Decimal(DIGITS)
    assert Decimal(repr(out[0].price)) != Decimal(DIGITS)  # the float could not have done it


def test_the_exact_price_survives_the_bus_codec() -> None:
    tick = Tick("binance", "BTC/USD", "BTC", "USD", float(DIGITS), 1, RECV, price_exact=DIGITS)
    assert decode_tick(encode_tick(tick)).exact_price() == Decimal(DIGITS)


def test_a_tick_from_before_the_exact_field_decodes_with_its_float() -> None:
    old = msgspec.json.encode(
        {"venue": "x", "symbol": "A/B", "base": "A", "quote": "B", "price": 0.1, "ts_ms": 1,
         "recv_ns": 2}
    )  # fmt: skip
    tick = decode_tick(old)
    assert (tick.price_exact, tick.snapshot, tick.exact_price()) == ("", False, Decimal("0.1"))


def test_fields_at_their_default_stay_off_the_bus() -> None:
    tick = Tick("x", "A/B", "A", "B", 0.1, 1, 2)
    assert msgspec.json.decode(encode_tick(tick)) == {
        "venue": "x", "symbol": "A/B", "base": "A", "quote": "B", "price": 0.1, "ts_ms": 1,
        "recv_ns": 2,
    }  # fmt: skip


PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2026-01-10
"""
AT_MS = 1_770_681_600_000  # 2026-02-10T00:00:00Z


def _alert_price(quote: str) -> str:
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    one_venue = load_settings(overrides={"prices.hold_s": 0})  # one venue's tick, at once
    detector = build_detector(one_venue, lots, event_time=True, as_of_ms=AT_MS)
    digits = "47000.000000000000001"  # float64 reads 47000.0
    tick = Tick(
        "coinbase", f"BTC/{quote}", "BTC", quote, float(digits), AT_MS, AT_MS * 10**6,
        price_exact=digits,
    )  # fmt: skip
    (alert,) = detector.on_tick(tick)
    return alert.price


def test_an_alert_states_the_venues_digits_when_the_consensus_is_that_usd_tick() -> None:
    assert _alert_price("USD") == "47000.000000000000001"


def test_a_converted_price_is_the_consensus_float_not_the_ticks_digits() -> None:
    """USDT is converted at its live rate: the alert price is a computed value."""
    assert _alert_price("USDT") == "47000"
