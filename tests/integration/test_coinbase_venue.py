"""The Coinbase feed against a simulated Coinbase as hard as the real one (issue 11).

The simulator acknowledges subscriptions in the documented shape only (no `heartbeats`
key), may send no acknowledgement at all, numbers messages per connection or per
channel (not documented which), and sends all-empty tickers now and then.
"""

from __future__ import annotations

import asyncio
from typing import Any

from streams.feeds.coinbase import CoinbaseFeed
from streams.feeds.interface import FeedConfig, FeedState
from streams.simulator.coinbase import CoinbaseSimulator
from tests.integration.feed_harness import Collector, metric, until

SYMBOLS = ("BTC/USD", "ETH/USD", "USDT/USD")


def make_feed(url: str, **overrides: Any) -> CoinbaseFeed:
    settings: dict[str, Any] = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1}
    settings |= {"silence_timeout_s": 5.0} | overrides
    return CoinbaseFeed(FeedConfig("coinbase", SYMBOLS, url=url, **settings))


async def _run(sim: CoinbaseSimulator, ticks: int = 60) -> Collector:
    collector = Collector(make_feed(sim.url))
    await collector.feed.start()
    await until(lambda: len(collector.ticks) >= ticks)
    return collector


async def test_the_documented_subscriptions_message_makes_the_feed_subscribed() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10) as sim:
        collector = await _run(sim)
        await until(lambda: collector.feed.status.state is FeedState.SUBSCRIBED)
        await collector.close()


async def test_the_first_data_message_proves_the_subscription_without_an_ack() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10, ack_subscriptions=False) as sim:
        collector = await _run(sim)
        await until(lambda: collector.feed.status.state is FeedState.SUBSCRIBED)
        await collector.close()


async def test_per_channel_sequence_numbers_drop_nothing_and_are_no_gaps() -> None:
    async with CoinbaseSimulator(
        SYMBOLS, tick_interval_ms=10, heartbeat_interval_s=0.05, sequence_scope="channel"
    ) as sim:
        collector = await _run(sim, ticks=150)
        await asyncio.sleep(0.3)  # heartbeats and tickers interleaved, each counting from 0
        await collector.close()
    status = collector.feed.status
    assert (status.dropped, status.gaps) == ({}, 0)
    assert {t.symbol for t in collector.ticks[-30:]} == set(SYMBOLS)


async def test_a_gap_in_per_channel_numbers_is_counted() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10, sequence_scope="channel") as sim:
        collector = await _run(sim)
        sim.skip_sequence(4)
        await until(lambda: collector.feed.status.gaps == 1)
        await asyncio.sleep(0.2)
        await collector.close()
    status = collector.feed.status
    assert (status.gaps, status.missed_messages, status.dropped) == (1, 4, {})


async def test_a_number_going_back_on_one_connection_is_passed_on_not_dropped() -> None:
    """A replayed (lower) number under per-connection counting: the ticks still pass."""
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10) as sim:
        collector = await _run(sim)
        sim.skip_sequence(-5)  # the next numbers repeat five already seen
        seen = len(collector.ticks)
        await until(lambda: len(collector.ticks) >= seen + 30)
        await collector.close()
    assert "stale_sequence" not in collector.feed.status.dropped
    assert collector.feed.status.reconnects == 0


async def test_all_empty_tickers_are_skipped_as_such_not_as_malformed() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10, empty_ticker_every=5) as sim:
        collector = await _run(sim, ticks=120)
        await collector.close()
    status = collector.feed.status
    assert sim.empty_tickers_sent > 0
    assert (status.dropped, set(status.skipped)) == ({}, {"empty_ticker"})
    assert status.skipped["empty_ticker"] >= sim.empty_tickers_sent - 1  # the last in flight
    skipped = metric("hm_feed_messages_skipped_total", venue="coinbase", reason="empty_ticker")
    assert skipped >= status.skipped["empty_ticker"]
