"""The same market, from each venue's own message shape, becomes the same Tick."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from streams.feeds.binance import BinanceProtocol
from streams.feeds.coinbase import CoinbaseProtocol
from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenProtocol
from streams.feeds.session import VenueProtocol
from streams.ticks import Tick
from tests.unit.recording_link import RecordingLink

RECV = 1_695_628_177_800_000_000
TS = 1_695_628_177_708  # 2023-09-25T07:49:37.708Z

# One BTC/USD print at 26500.1, as each venue writes it (shapes of the reference doc).
MESSAGES = {
    "binance": (
        '{"stream": "btcusd@trade", "data": {"e": "trade", "E": 1695628177708, "s": "BTCUSD", '
        '"t": 1, "p": "26500.10", "q": "0.01", "T": 1695628177708, "m": true, "M": true}}'
    ),
    "coinbase": (
        '{"channel": "ticker", "client_id": "", "timestamp": "2023-09-25T07:49:37.708706123Z", '
        '"sequence_num": 0, "events": [{"type": "update", "tickers": [{"type": "ticker", '
        '"product_id": "BTC-USD", "price": "26500.10", "volume_24_h": "1"}]}]}'
    ),
    "kraken": (
        '{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "buy", '
        '"price": 26500.1, "qty": 0.01, "ord_type": "market", "trade_id": 4665906, '
        '"timestamp": "2023-09-25T07:49:37.708706Z"}]}'
    ),
}
PROTOCOLS: dict[str, Callable[[FeedConfig], VenueProtocol]] = {
    "binance": BinanceProtocol,
    "coinbase": CoinbaseProtocol,
    "kraken": KrakenProtocol,
}
CHANNEL = {"binance": "trade", "coinbase": "ticker", "kraken": "trade"}


def tick(venue: str) -> Tick:
    config = FeedConfig(venue, ("BTC/USD",), channel=CHANNEL[venue])
    session = PROTOCOLS[venue](config).session(RecordingLink())
    out = session.handle(MESSAGES[venue].encode(), RECV)
    assert isinstance(out, list) and len(out) == 1, out
    first: Tick = out[0]
    return first


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
def test_each_venue_normalizes_btc_usd_to_the_same_tick(venue: str) -> None:
    expected = Tick(venue, "BTC/USD", "BTC", "USD", 26500.1, TS, RECV)
    got = tick(venue)
    assert msgspec.structs.replace(got, price_exact="") == expected
    assert got.exact_price() == Decimal("26500.1")  # the venue's digits, "26500.10" or 26500.1
