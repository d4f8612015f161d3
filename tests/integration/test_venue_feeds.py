"""Coinbase and Kraken feeds against their simulated venues on loopback: real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from streams.feeds.coinbase import CoinbaseFeed
from streams.feeds.interface import FeedConfig, FeedState
from streams.feeds.kraken import KrakenFeed
from streams.feeds.socket_feed import SocketFeed
from streams.simulator.coinbase import CoinbaseSimulator
from streams.simulator.kraken import KrakenSimulator
from streams.simulator.venue import SimulatedVenue
from tests.integration.feed_harness import Collector, metric, until

SYMBOLS = ("BTC/USD", "ETH/USD", "USDT/USD")
VENUES: dict[str, tuple[type[SimulatedVenue], type[SocketFeed]]] = {
    "coinbase": (CoinbaseSimulator, CoinbaseFeed),
    "kraken": (KrakenSimulator, KrakenFeed),
}


def make_feed(venue: str, url: str, **overrides: Any) -> SocketFeed:
    settings: dict[str, Any] = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1}
    settings |= {"silence_timeout_s": 5.0, "ping_interval_s": 5.0} | overrides
    return VENUES[venue][1](FeedConfig(venue, SYMBOLS, url=url, **settings))


@pytest.fixture(params=list(VENUES))
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedVenue]:
    cls = VENUES[request.param][0]
    async with cls(SYMBOLS, seed=7, tick_interval_ms=10) as simulator:
        yield simulator


@pytest.fixture
async def running(sim: SimulatedVenue) -> AsyncIterator[Collector]:
    collector = Collector(make_feed(sim.name, sim.url))
    await collector.feed.start()
    await until(lambda: collector.symbols_since(0) == set(SYMBOLS))
    yield collector
    await collector.close()


def subscriptions(sim: SimulatedVenue) -> list[tuple[int, str, tuple[str, ...]]]:
    log: list[tuple[int, str, tuple[str, ...]]] = sim.subscribe_log  # type: ignore[attr-defined]
    return log


async def test_the_feed_is_subscribed_and_ticks_carry_the_simulators_prices(
    sim: SimulatedVenue, running: Collector
) -> None:
    await until(lambda: running.feed.status.state is FeedState.SUBSCRIBED)
    last = running.ticks[-1]
    assert last.price == pytest.approx(sim.last_prices()[last.symbol], rel=0.01)


async def test_garbage_is_dropped_and_counted_while_good_ticks_keep_coming(
    sim: SimulatedVenue, running: Collector
) -> None:
    before = metric("hm_feed_messages_dropped_total", venue=sim.name, reason="malformed_json")
    sim.send_raw("this is not json")
    await until(lambda: running.feed.status.dropped.get("malformed_json") == 1)
    seen = len(running.ticks)
    await until(lambda: running.symbols_since(seen) == set(SYMBOLS))
    after = metric("hm_feed_messages_dropped_total", venue=sim.name, reason="malformed_json")
    assert (after - before, sim.connections_total, running.feed.status.reconnects) == (1, 1, 0)


async def test_a_dropped_connection_is_reconnected_and_resubscribed(
    sim: SimulatedVenue, running: Collector
) -> None:
    sim.drop_connections()
    await until(lambda: running.feed.status.reconnects == 1)
    seen = len(running.ticks)
    await until(lambda: running.symbols_since(seen) == set(SYMBOLS))
    last = [entry for entry in subscriptions(sim) if entry[0] == 2]
    assert sorted(s for _, channel, ids in last for s in ids if channel != "heartbeats") == sorted(
        ["BTC-USD", "ETH-USD", "USDT-USD"] if sim.name == "coinbase" else SYMBOLS
    )


async def test_a_stall_is_detected_and_the_feed_reconnects(sim: SimulatedVenue) -> None:
    collector = Collector(make_feed(sim.name, sim.url, silence_timeout_s=0.3))
    await collector.feed.start()
    await until(lambda: len(collector.ticks) > 0)
    sim.stall(0.8)
    await until(lambda: collector.feed.status.stalls == 1 and collector.feed.status.reconnects)
    seen = len(collector.ticks)
    await until(lambda: len(collector.ticks) > seen)  # and data again once the stall is over
    await collector.close()


async def test_kraken_detects_a_stall_by_its_unanswered_ping() -> None:
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=10) as sim:
        feed = make_feed("kraken", sim.url, ping_interval_s=0.1, silence_timeout_s=30.0)
        collector = Collector(feed)
        await feed.start()
        await until(lambda: sim.pings >= 1)
        sim.stall(1.0)
        # Record the error as the first stall is counted: the reconnect that follows may
        # meet the same stall (or fail to connect) and overwrite last_error.
        errors: list[str] = []

        def stalled() -> bool:
            if feed.status.stalls >= 1 and not errors:
                errors.append(feed.status.last_error)
            return bool(errors)

        await until(stalled)
        sim.resume()
        await collector.close()
    assert "no pong" in errors[0]


async def test_a_coinbase_sequence_gap_is_counted() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=10) as sim:
        collector = Collector(make_feed("coinbase", sim.url))
        await collector.feed.start()
        await until(lambda: collector.feed.status.state is FeedState.SUBSCRIBED)
        before = metric("hm_feed_sequence_gaps_total", venue="coinbase")
        sim.skip_sequence(3)
        await until(lambda: collector.feed.status.gaps == 1)
        await collector.close()
    status = collector.feed.status
    gaps = metric("hm_feed_sequence_gaps_total", venue="coinbase") - before
    assert (status.gaps, status.missed_messages, gaps, status.reconnects) == (1, 3, 1.0, 0)


async def test_per_symbol_last_tick_times_are_in_status_and_metrics(running: Collector) -> None:
    status = running.feed.status
    await until(lambda: set(status.symbol_last_tick_ns) == set(SYMBOLS))
    await until(
        lambda: (
            metric(
                "hm_feed_symbol_last_tick_timestamp_seconds", venue=status.venue, symbol="ETH/USD"
            )
            > 0
        ),
        within=3.0,
    )


async def test_stop_ends_batches_and_sets_the_state(running: Collector) -> None:
    await running.feed.stop()
    await until(lambda: running.task.done())
    assert running.feed.status.state is FeedState.STOPPED
