"""make_feed: which client serves a [[feeds]] entry; ccxt URL overrides and markets."""

from __future__ import annotations

import pytest

from streams.errors import FeedError
from streams.feeds.binance import BinanceFeed
from streams.feeds.ccxtpro import CcxtFeed, point_ws_urls, spot_markets
from streams.feeds.coinbase import CoinbaseFeed
from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenFeed
from streams.feeds.registry import make_feed


@pytest.mark.parametrize(
    ("venue", "cls"), [("binance", BinanceFeed), ("coinbase", CoinbaseFeed), ("kraken", KrakenFeed)]
)
def test_native_venues_get_their_own_client(venue: str, cls: type) -> None:
    assert type(make_feed(FeedConfig(venue, ("BTC/USD",)))) is cls


def test_kind_ccxt_gets_the_ccxt_client_with_the_exchange_id() -> None:
    feed = make_feed(FeedConfig("okx", ("BTC/USDT",), kind="ccxt"))
    assert (type(feed), feed.status.exchange_id, feed.status.kind) == (CcxtFeed, "okx", "ccxt")


def test_an_unknown_native_venue_points_to_ccxt() -> None:
    with pytest.raises(FeedError, match='kind = "ccxt"'):
        make_feed(FeedConfig("okx", ("BTC/USDT",)))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(FeedError, match="kind 'rest'"):
        make_feed(FeedConfig("binance", ("BTC/USDT",), kind="rest"))


def test_an_unknown_channel_is_refused() -> None:
    with pytest.raises(FeedError, match="channel 'book'"):
        make_feed(FeedConfig("kraken", ("BTC/USD",), channel="book"))


def test_no_symbols_is_refused() -> None:
    with pytest.raises(FeedError, match="no symbols"):
        make_feed(FeedConfig("coinbase", ()))


def test_a_url_override_keeps_each_websocket_path() -> None:
    urls = {"api": {"ws": {"spot": "wss://stream.binance.com:9443/ws", "n": 3}, "rest": "x"}}
    point_ws_urls(urls, "ws://127.0.0.1:9000")
    assert urls["api"] == {"ws": {"spot": "ws://127.0.0.1:9000/ws", "n": 3}, "rest": "x"}


def test_a_url_override_with_a_path_replaces_every_websocket_url() -> None:
    urls = {"api": {"ws": {"publicV2": "wss://ws.kraken.com/v2", "private": "wss://a/b"}}}
    point_ws_urls(urls, "ws://127.0.0.1:9000/v2")
    assert set(urls["api"]["ws"].values()) == {"ws://127.0.0.1:9000/v2"}


def test_spot_markets_spell_ids_the_exchange_way() -> None:
    (market,) = spot_markets(["eth/usdt"])
    assert (market["id"], market["lowercaseId"], market["symbol"], market["spot"]) == (
        "ETHUSDT",
        "ethusdt",
        "ETH/USDT",
        True,
    )


async def test_a_venue_that_cannot_be_reached_is_named_by_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed connect names the host it tried (a DNS error alone names none)."""
    import asyncio
    import logging
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    config = FeedConfig(
        "binance", ("BTC/USDT",), url=f"ws://127.0.0.1:{port}/ws", backoff_initial_s=0.05
    )
    feed = make_feed(config)
    with caplog.at_level(logging.WARNING, logger="streams.feeds.socket_feed"):
        await feed.start()
        try:
            async with asyncio.timeout(10):
                while not any(  # noqa: ASYNC110
                    r.getMessage().startswith("binance connection") for r in caplog.records
                ):
                    await asyncio.sleep(0.02)
        finally:
            await feed.stop()
    record = next(r for r in caplog.records if r.getMessage().startswith("binance connection"))
    assert f"connection to 127.0.0.1:{port} ended" in record.getMessage()
    assert record.__dict__["host"] == f"127.0.0.1:{port}"
