"""The ccxt.pro feed against the simulated Binance: markets injected (no REST), ws URL overridden.

ccxt's own binance client speaks to the simulator (it subscribes `<id>@miniTicker` for
`watch_tickers`, `<id>@trade` for `watch_trades_for_symbols`); nothing leaves loopback.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from streams.feeds.ccxtpro import CcxtFeed, spot_markets
from streams.feeds.interface import FeedConfig, FeedState
from streams.feeds.registry import make_feed
from streams.simulator.binance import BinanceSimulator
from streams.simulator.coinbase import CoinbaseSimulator
from streams.simulator.kraken import KrakenSimulator
from tests.integration.feed_harness import Collector, metric, until

SYMBOLS = ("BTC/USDT", "ETH/USDT")
T0 = 1_700_000_000_000
VENUE = "binance-ccxt"  # its own metric labels, apart from the native binance feed


@pytest.fixture
async def sim() -> AsyncIterator[BinanceSimulator]:
    clock = itertools.count(T0).__next__
    async with BinanceSimulator(SYMBOLS, tick_interval_ms=10, clock=clock) as simulator:
        yield simulator


def ccxt_feed(url: str, channel: str = "", **overrides: float) -> CcxtFeed:
    config = FeedConfig(
        VENUE,
        SYMBOLS,
        url=url,
        kind="ccxt",
        exchange_id="binance",
        channel=channel,
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
        **overrides,  # type: ignore[arg-type]
    )
    feed = make_feed(config, markets=spot_markets(SYMBOLS))
    assert isinstance(feed, CcxtFeed)
    return feed


@pytest.fixture
async def running(sim: BinanceSimulator) -> AsyncIterator[Collector]:
    collector = Collector(ccxt_feed(sim.url, silence_timeout_s=2.0))
    await collector.feed.start()
    await until(lambda: collector.symbols_since(0) == set(SYMBOLS), within=10.0)
    yield collector
    await collector.close()


async def test_tickers_arrive_as_ticks_at_the_simulators_prices(
    sim: BinanceSimulator, running: Collector
) -> None:
    tick = running.ticks[-1]
    assert (tick.venue, tick.ts_ms >= T0, tick.price) == (
        VENUE,
        True,
        pytest.approx(sim.last_prices()[tick.symbol], rel=0.01),
    )


async def test_the_feed_subscribed_mini_tickers_on_the_simulator(
    sim: BinanceSimulator, running: Collector
) -> None:
    await until(lambda: running.feed.status.state is FeedState.SUBSCRIBED)
    assert sorted(sim.subscribe_log[0].params) == ["btcusdt@miniTicker", "ethusdt@miniTicker"]


async def test_trades_arrive_as_ticks_with_consecutive_times(sim: BinanceSimulator) -> None:
    collector = Collector(ccxt_feed(sim.url, channel="trades"))
    await collector.feed.start()
    await until(lambda: len([t for t in collector.ticks if t.symbol == "BTC/USDT"]) >= 20)
    await collector.close()
    times = [t.ts_ms for t in collector.ticks if t.symbol == "BTC/USDT"]
    assert times == list(range(times[0], times[0] + len(times)))


async def test_garbage_is_counted_and_ticks_keep_coming(
    sim: BinanceSimulator, running: Collector
) -> None:
    before = metric("hm_feed_messages_dropped_total", venue=VENUE, reason="malformed_json")
    sim.send_raw("this is not json")
    await until(lambda: running.feed.status.dropped.get("malformed_json") == 1)
    seen = len(running.ticks)
    await until(lambda: running.symbols_since(seen) == set(SYMBOLS))
    after = metric("hm_feed_messages_dropped_total", venue=VENUE, reason="malformed_json")
    assert (after - before, sim.connections_total) == (1.0, 1)


async def test_garbage_that_chokes_ccxts_handler_does_not_kill_the_connection(
    sim: BinanceSimulator, running: Collector
) -> None:
    # Bare ccxt 4.5 binance takes this text for a book ticker, raises in its receive
    # callback and never reads that socket again (see streams/feeds/ccxtpro.py).
    sim.send_raw("garbage, not a book ticker")
    await until(lambda: running.feed.status.dropped.get("malformed_json") == 1)
    seen = len(running.ticks)
    await until(lambda: running.symbols_since(seen) == set(SYMBOLS))
    assert (sim.connections_total, running.feed.status.reconnects) == (1, 0)


async def test_a_dropped_connection_is_reconnected(
    sim: BinanceSimulator, running: Collector
) -> None:
    sim.drop_connections()
    await until(lambda: running.feed.status.reconnects >= 1, within=10.0)
    seen = len(running.ticks)
    await until(lambda: running.symbols_since(seen) == set(SYMBOLS), within=10.0)
    assert sim.subscribe_requests >= 2


async def test_a_stall_is_detected_and_recovered(sim: BinanceSimulator) -> None:
    collector = Collector(ccxt_feed(sim.url, silence_timeout_s=0.3))
    await collector.feed.start()
    await until(lambda: len(collector.ticks) > 0, within=10.0)
    sim.stall(0.8)
    await until(lambda: collector.feed.status.stalls >= 1, within=10.0)
    seen = len(collector.ticks)
    await until(lambda: len(collector.ticks) > seen, within=10.0)
    await collector.close()


# ccxt's coinbase client against the simulated Coinbase ---------------------------------


async def test_ccxts_coinbase_tickers_arrive_from_the_simulated_coinbase() -> None:
    """ccxt's coinbase `watch_tickers` subscribes `ticker_batch`; empty tickers come too."""
    symbols = ("BTC/USD", "ETH/USD")
    async with CoinbaseSimulator(
        symbols, tick_interval_ms=10, batch_interval_s=0.05, empty_ticker_every=3
    ) as sim:
        config = FeedConfig(
            "coinbase-ccxt",
            symbols,
            url=sim.url,
            kind="ccxt",
            exchange_id="coinbase",
            backoff_initial_s=0.02,
            backoff_max_s=0.1,
        )
        feed = make_feed(config, markets=spot_markets(symbols, "{base}-{quote}"))
        collector = Collector(feed)
        await feed.start()
        await until(lambda: collector.symbols_since(0) == set(symbols), within=10.0)
        await until(lambda: sim.empty_tickers_sent >= 3)
        seen = len(collector.ticks)
        await until(lambda: collector.symbols_since(seen) == set(symbols), within=10.0)
        await collector.close()
    assert sim.subscribe_log[0][1:] == ("ticker_batch", ("BTC-USD", "ETH-USD"))
    last = collector.ticks[-1]
    assert last.price == pytest.approx(sim.last_prices()[last.symbol], rel=0.01)
    assert feed.status.reconnects == 0


# ccxt's kraken client against the simulated Kraken (v2) ----------------------------------


@pytest.mark.parametrize("channel", ["tickers", "trades"])
async def test_ccxts_kraken_speaks_v2_to_the_simulated_kraken(channel: str) -> None:
    """ccxt 4.5's kraken subscribes ticker and trade on the v2 endpoint (`publicV2`)."""
    symbols = ("BTC/USD", "ETH/USD")
    async with KrakenSimulator(symbols, tick_interval_ms=10) as sim:
        config = FeedConfig(
            "kraken-ccxt",
            symbols,
            url=sim.url,
            kind="ccxt",
            exchange_id="kraken",
            channel=channel,
            backoff_initial_s=0.02,
            backoff_max_s=0.1,
        )
        feed = make_feed(config, markets=spot_markets(symbols))
        collector = Collector(feed)
        await feed.start()
        await until(lambda: collector.symbols_since(0) == set(symbols), within=10.0)
        await collector.close()
    wanted = "ticker" if channel == "tickers" else "trade"
    assert sim.subscribe_log[0][1:] == (wanted, symbols)
    last = collector.ticks[-1]
    assert last.price == pytest.approx(sim.last_prices()[last.symbol], rel=0.01)
