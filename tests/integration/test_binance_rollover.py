"""Binance's 24-hour connection limit, in seconds: the rollover loses and doubles no tick.

The simulated Binance closes every connection at `max_connection_age_s` (as Binance does
at 24 hours); its event times count one per step, so a symbol's ticks must come out with
consecutive times: a lost tick is a hole, a doubled one a repeat.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from streams.feeds.binance import BinanceFeed
from streams.feeds.interface import FeedConfig
from streams.simulator.binance import BinanceSimulator
from tests.integration.feed_harness import Collector, metric, until

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
T0 = 1_700_000_000_000
SERVER_MAX_AGE_S = 0.8


@pytest.fixture
async def sim() -> AsyncIterator[BinanceSimulator]:
    clock = itertools.count(T0).__next__
    async with BinanceSimulator(
        SYMBOLS, tick_interval_ms=5, clock=clock, max_connection_age_s=SERVER_MAX_AGE_S
    ) as simulator:
        yield simulator


def feed(url: str, max_age_s: float) -> BinanceFeed:
    config = FeedConfig(
        "binance",
        SYMBOLS,
        url=url,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
        max_connection_age_s=max_age_s,
        rollover_overlap_s=1.0,
    )
    return BinanceFeed(config)


def holes_and_repeats(collector: Collector) -> list[tuple[str, int, int]]:
    """(symbol, time, next time) wherever a symbol's tick times are not consecutive."""
    bad = []
    for symbol in SYMBOLS:
        times = [t.ts_ms for t in collector.ticks if t.symbol == symbol]
        bad += [(symbol, a, b) for a, b in itertools.pairwise(times) if b != a + 1]
    return bad


async def test_rollovers_lose_and_double_no_tick(sim: BinanceSimulator) -> None:
    before = metric("hm_feed_rollovers_total", venue="binance")
    collector = Collector(feed(sim.url, max_age_s=0.3))
    await collector.feed.start()
    await until(lambda: collector.feed.status.rollovers >= 3, within=10.0)
    await collector.close()
    status = collector.feed.status
    assert (holes_and_repeats(collector), status.reconnects, sim.connections_total >= 4) == (
        [],
        0,
        True,
    )
    assert metric("hm_feed_rollovers_total", venue="binance") - before == status.rollovers


async def test_the_overlap_saw_duplicates_and_passed_them_once(sim: BinanceSimulator) -> None:
    collector = Collector(feed(sim.url, max_age_s=0.3))
    await collector.feed.start()
    await until(lambda: collector.feed.status.rollovers >= 1, within=10.0)
    await collector.close()
    assert collector.feed.status.duplicates > 0


async def test_without_rollover_the_server_cut_loses_ticks(sim: BinanceSimulator) -> None:
    """The control: the same server, no rollover: its age limit forces a reconnect and a hole."""
    collector = Collector(feed(sim.url, max_age_s=0))
    await collector.feed.start()
    await until(lambda: collector.feed.status.reconnects >= 1, within=10.0)
    seen = len(collector.ticks)
    await until(lambda: len(collector.ticks) > seen + 10)
    await collector.close()
    assert holes_and_repeats(collector) != []
