"""The Binance feed against a simulated Binance as hard as the real one (issue 11).

The simulator pings (every `ping_interval`) and hangs up on a client that does not pong in
`ping_timeout`, sends no heartbeat messages, lets quiet symbols go without a trade,
counts every frame a client sends against 5 a second, speaks microsecond times when the
URL asks, and announces its shutdowns. Binance's 20 s / 60 s become tenths of a second
here so the tests are fast; the ratios are Binance's.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streams.feeds.binance import BinanceFeed
from streams.feeds.interface import FeedConfig, FeedState
from streams.simulator.binance import BinanceSimulator
from streams.simulator.universe import UNIVERSE
from tests.integration.feed_harness import Collector, until

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
T0 = 1_700_000_000_000


def make_feed(url: str, symbols: Sequence[str] = SYMBOLS, **overrides: float) -> BinanceFeed:
    settings: dict[str, float] = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2}
    settings.update(overrides)
    config = FeedConfig("binance", tuple(symbols), url=url, **settings)  # type: ignore[arg-type]
    return BinanceFeed(config)


async def test_a_quiet_connection_that_answers_pings_is_kept_and_resets_the_backoff() -> None:
    """No trade for many silence timeouts: the venue's pings prove the connection alive."""
    async with BinanceSimulator(
        SYMBOLS, tick_interval_ms=20, quiet_symbols=SYMBOLS, ping_interval=0.3, ping_timeout=0.9
    ) as sim:
        feed = make_feed(sim.url, silence_timeout_s=1.0, backoff_reset_after_s=2.0)
        await feed.start()
        await until(lambda: feed.status.state is FeedState.SUBSCRIBED)
        await asyncio.sleep(3.0)  # three silence timeouts without a single trade
        status = feed.status
        assert (status.stalls, status.reconnects, sim.connections_total) == (0, 0, 1)
        sim.drop_connections()  # after a healthy 3 s: the next delay starts from the bottom
        await until(lambda: feed.status.reconnects == 1 and sim.connections_open == 1)
        assert feed._backoff.failures == 1
        await feed.stop()


def _many_symbols(count: int) -> list[str]:
    quotes = ("USDT", "USDC", "USD", "FDUSD", *(a.base for a in UNIVERSE))
    symbols = [f"{a.base}/{q}" for a in UNIVERSE for q in quotes if q != a.base]
    assert len(symbols) >= count
    return symbols[:count]


async def test_subscribes_and_pongs_together_stay_within_5_messages_a_second() -> None:
    """601 streams are 4 SUBSCRIBE requests; the pongs to the venue's pings count too."""
    symbols = _many_symbols(601)
    async with BinanceSimulator(
        symbols, tick_interval_ms=200, ping_interval=0.4, ping_timeout=2.0
    ) as sim:
        feed = make_feed(sim.url, symbols, silence_timeout_s=5.0)
        await feed.start()
        await until(lambda: feed.status.state is FeedState.SUBSCRIBED, within=15.0)
        await asyncio.sleep(0.5)
        closed = (feed.status.reconnects, sim.connections_total)
        await feed.stop()
    assert [len(r.params) for r in sim.subscribe_log] == [200, 200, 200, 1]
    assert closed == (0, 1)  # the venue never hung up on the feed


async def test_a_url_query_is_kept_and_microsecond_times_are_read_as_such() -> None:
    clock = itertools.count(T0).__next__
    async with BinanceSimulator(SYMBOLS, tick_interval_ms=5, clock=clock) as sim:
        feed = make_feed(sim.url + "?timeUnit=MICROSECOND", silence_timeout_s=5.0)
        await feed.start()
        collector = Collector(feed)
        await until(lambda: len(collector.ticks) >= 30)
        await collector.close()
    times = [t.ts_ms for t in collector.ticks]
    assert all(T0 <= ts < T0 + 10_000 for ts in times), times[:3]
    btc = [t.ts_ms for t in collector.ticks if t.symbol == "BTC/USDT"]
    assert btc == list(range(btc[0], btc[0] + len(btc)))


async def test_pings_are_answered_while_the_consumer_does_not_read() -> None:
    """A consumer stalled for several ping timeouts: the connection must survive it."""
    async with BinanceSimulator(
        SYMBOLS, tick_interval_ms=5, ping_interval=0.3, ping_timeout=0.9
    ) as sim:
        feed = make_feed(sim.url, queue_size=4, silence_timeout_s=5.0)
        await feed.start()
        await until(lambda: feed.status.state is FeedState.SUBSCRIBED)
        await asyncio.sleep(4.0)  # nobody consumes
        collector = Collector(feed)
        await until(lambda: len(collector.ticks) >= 100)
        await asyncio.sleep(1.0)  # past what was buffered before the venue could hang up
        await collector.close()
    assert (feed.status.reconnects, sim.connections_total) == (0, 1)
    latest = {t.symbol for t in collector.ticks}
    assert latest == set(SYMBOLS)


async def test_a_server_shutdown_notice_rolls_over_without_losing_a_trade() -> None:
    clock = itertools.count(T0).__next__
    async with BinanceSimulator(SYMBOLS, tick_interval_ms=5, clock=clock) as sim:
        feed = make_feed(sim.url, silence_timeout_s=5.0, rollover_overlap_s=1.0)
        await feed.start()
        collector = Collector(feed)
        await until(lambda: len(collector.ticks) >= 30)
        assert sim.announce_shutdown(close_after_s=1.0) == 1
        await until(lambda: feed.status.rollovers == 1)
        await asyncio.sleep(1.2)  # the old connection is closed by the venue by now
        seen = len(collector.ticks)
        await until(lambda: len(collector.ticks) >= seen + 30)
        await collector.close()
    assert feed.status.reconnects == 0
    for symbol in SYMBOLS:
        times = [t.ts_ms for t in collector.ticks if t.symbol == symbol]
        assert times == list(range(times[0], times[0] + len(times))), symbol


async def test_the_simulator_closes_a_client_that_does_not_pong() -> None:
    async with BinanceSimulator(SYMBOLS, ping_interval=0.1, ping_timeout=0.3) as sim:
        async with connect(sim.url + "/ws/btcusdt@trade", ping_interval=None) as ws:
            ws.transport.pause_reading()  # the pings go unread, so unanswered
            await asyncio.sleep(1.0)
            ws.transport.resume_reading()
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(2.0):
                    while True:
                        await ws.recv()
        assert ws.close_code == 1011  # keepalive ping timeout, as the server closed it


async def test_the_simulator_counts_pongs_against_the_limit() -> None:
    async with (
        BinanceSimulator(SYMBOLS, ping_interval=None) as sim,
        connect(sim.url + "/ws", ping_interval=None) as ws,
    ):
        for _ in range(6):  # unsolicited pongs are allowed, but they count
            await ws.pong(b"x")
        await ws.wait_closed()
        assert ws.close_code == 1008
