"""The Kraken feed against a simulated Kraken as hard as the real one (issue 11).

The simulator sends a trade snapshot (the pair's last 50 trades, history) when asked,
stamps its tickers, and leaves `last` out for a pair that has not traded.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenFeed
from streams.simulator.kraken import KrakenSimulator
from tests.integration.feed_harness import Collector, until

SYMBOLS = ("BTC/USD", "ETH/USD", "USDT/USD")
T0 = 1_700_000_000_000


def make_feed(url: str, symbols: tuple[str, ...] = SYMBOLS, **overrides: Any) -> KrakenFeed:
    settings: dict[str, Any] = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1}
    settings |= {"silence_timeout_s": 5.0, "ping_interval_s": 5.0} | overrides
    return KrakenFeed(FeedConfig("kraken", symbols, url=url, **settings))


class Clock:
    """The simulator's clock: one millisecond more on every reading, so times are unique."""

    def __init__(self) -> None:
        self.value = T0

    def __call__(self) -> int:
        self.value += 1
        return self.value


async def test_a_trade_snapshot_is_history_not_live_ticks_even_across_reconnects() -> None:
    clock = Clock()
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=5, clock=clock) as sim:
        await asyncio.sleep(0.5)  # 100 steps: every pair has trades of history
        start_ms = clock.value
        collector = Collector(make_feed(sim.url, channel="trade"))
        await collector.feed.start()
        await until(lambda: len(collector.ticks) >= 60)
        sim.drop_connections()
        await until(lambda: collector.feed.status.reconnects == 1)
        seen = len(collector.ticks)
        await until(lambda: len(collector.ticks) >= seen + 60)
        await collector.close()
    assert sim.snapshot_params == [True, True]  # asked for explicitly, on every connection
    for symbol in SYMBOLS:
        ticks = [t for t in collector.ticks if t.symbol == symbol]
        marked = [t for t in ticks if t.snapshot]
        old = [t for t in ticks if t.ts_ms <= start_ms]
        assert len(marked) <= 2 and old == [t for t in marked if t.ts_ms <= start_ms]
        times = [t.ts_ms for t in ticks]
        assert times == sorted(times), symbol  # no past trade replayed after a newer one
        assert len(times) == len(set(times)), symbol  # none passed twice


async def test_ticker_ticks_carry_the_venues_timestamp() -> None:
    clock = itertools.count(T0).__next__
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=5, clock=clock) as sim:
        collector = Collector(make_feed(sim.url))
        await collector.feed.start()
        await until(lambda: len(collector.ticks) >= 30)
        await collector.close()
    assert all(T0 <= t.ts_ms < T0 + 100_000 for t in collector.ticks)


async def test_a_ticker_without_last_is_skipped_as_such_not_malformed() -> None:
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=5, untraded_symbols=["ETH/USD"]) as sim:
        collector = Collector(make_feed(sim.url))
        await collector.feed.start()
        await until(lambda: len(collector.ticks) >= 60)
        await collector.close()
    assert {t.symbol for t in collector.ticks} == {"BTC/USD", "USDT/USD"}
    status = collector.feed.status
    assert (status.dropped, set(status.skipped)) == ({}, {"no_last_price"})


async def test_a_symbol_configured_by_its_old_kraken_code_is_subscribed_by_its_v2_name() -> None:
    async with KrakenSimulator(("DOGE/USD", "BTC/USD"), tick_interval_ms=5) as sim:
        collector = Collector(make_feed(sim.url, ("XDG/USD", "XBT/USD")))
        await collector.feed.start()
        await until(lambda: {t.symbol for t in collector.ticks} == {"DOGE/USD", "BTC/USD"})
        await collector.close()


async def test_kraken_prices_are_the_venues_digits_exactly() -> None:
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=5) as sim:
        collector = Collector(make_feed(sim.url))
        await collector.feed.start()
        await until(lambda: len(collector.ticks) >= 30)
        await collector.close()
    for tick in collector.ticks:
        assert tick.exact_price() == Decimal(tick.price_exact)
        assert float(tick.price_exact) == tick.price
