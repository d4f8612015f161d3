"""Three simulated venues over one market, each read by its own native feed, faults on cue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from streams.feeds.registry import make_feed
from streams.simulator.venues import SimulatedVenues
from streams.ticks import Tick
from tests.integration.feed_harness import Collector, until

ASSETS = ("BTC", "ETH")


@dataclass
class Market:
    venues: SimulatedVenues
    feeds: dict[str, Collector]

    def last(self, venue: str, symbol: str, after: int = 0) -> Tick | None:
        ticks = [t for t in self.feeds[venue].ticks[after:] if t.symbol == symbol]
        return ticks[-1] if ticks else None

    def seen(self) -> dict[str, int]:
        return {venue: len(c.ticks) for venue, c in self.feeds.items()}

    def since(self, seen: dict[str, int], *venues: str) -> list[Tick]:
        return [t for v in venues for t in self.feeds[v].ticks[seen[v] :]]

    def complete(self) -> bool:
        """Every venue delivered every symbol it lists."""
        return all(c.symbols_since(0) == set(self.venues.symbols(v)) for v, c in self.feeds.items())


@pytest.fixture
async def market() -> AsyncIterator[Market]:
    async with SimulatedVenues(ASSETS, tick_interval_ms=10, noise_bp=2.0) as venues:
        configs = venues.feed_configs(backoff_initial_s=0.02, backoff_max_s=0.1)
        feeds = {c.venue: Collector(make_feed(c)) for c in configs}
        for collector in feeds.values():
            await collector.feed.start()
        m = Market(venues, feeds)
        await until(
            lambda: all(c.symbols_since(0) == set(venues.symbols(v)) for v, c in feeds.items())
        )
        yield m
        for collector in feeds.values():
            await collector.close()


def test_each_venue_lists_its_own_quotes() -> None:
    venues = SimulatedVenues(ASSETS)
    assert [venues.symbols(v) for v in ("binance", "coinbase", "kraken")] == [
        ("BTC/USDT", "ETH/USDT"),
        ("BTC/USD", "ETH/USD", "USDT/USD"),
        ("BTC/USD", "ETH/USD", "USDT/USD"),
    ]


async def test_the_three_venues_agree_on_the_market(market: Market) -> None:
    prices = [
        market.last(v, s)
        for v, s in [("binance", "BTC/USDT"), ("coinbase", "BTC/USD"), ("kraken", "BTC/USD")]
    ]
    values = [p.price for p in prices if p is not None]
    assert max(values) / min(values) < 1.005


async def test_a_flash_wick_shows_on_one_venue_only(market: Market) -> None:
    seen = market.seen()
    reference = market.last("kraken", "BTC/USD")
    assert reference is not None
    market.venues.flash_wick("coinbase", "BTC", 0.7)
    low = reference.price * 0.8
    await until(
        lambda: any(t.price < low for t in market.feeds["coinbase"].ticks[seen["coinbase"] :])
    )
    await until(lambda: len(market.feeds["kraken"].ticks) > seen["kraken"] + 20)
    others = (
        market.feeds["kraken"].ticks[seen["kraken"] :]
        + market.feeds["binance"].ticks[seen["binance"] :]
    )
    assert min(t.price for t in others if t.base == "BTC") > low


async def test_a_usdt_de_peg_moves_usdt_quotes_and_usdt_usd(market: Market) -> None:
    market.venues.drift_peg("USDT", 0.95)
    seen = market.seen()
    await until(
        lambda: (
            (t := market.last("kraken", "USDT/USD", seen["kraken"])) is not None and t.price == 0.95
        )
    )
    await until(lambda: market.last("binance", "BTC/USDT", seen["binance"] + 10) is not None)
    usdt, usd = market.last("binance", "BTC/USDT"), market.last("coinbase", "BTC/USD")
    assert usdt is not None and usd is not None
    assert usdt.price / usd.price == pytest.approx(1 / 0.95, rel=0.003)


async def test_stalling_one_venue_leaves_the_others_flowing(market: Market) -> None:
    market.venues.stall("kraken", 1.5)
    flowing = ("binance", "coinbase")
    first = market.seen()
    await until(lambda: min(len(market.since(first, v)) for v in flowing) > 20)
    second = market.seen()  # whatever kraken had in flight has landed by now
    await until(lambda: min(len(market.since(second, v)) for v in flowing) > 20)
    assert (market.since(second, "kraken"), market.venues["kraken"].stalled) == ([], True)


async def test_coinbase_sequence_skip_reaches_the_feed_as_a_gap(market: Market) -> None:
    market.venues.skip_sequence(2)
    await until(lambda: market.feeds["coinbase"].feed.status.gaps == 1)
