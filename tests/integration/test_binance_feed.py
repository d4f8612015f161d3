"""The Binance feed against the simulated Binance on loopback: real sockets, real protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from streams.feeds.binance import BinanceFeed
from streams.feeds.interface import FeedConfig, FeedState
from streams.simulator.binance import BinanceSimulator
from streams.simulator.prices import PricePaths, QuoteBoard
from streams.simulator.universe import UNIVERSE
from streams.ticks import Tick

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDC", "DOGE/USDT")
T0 = 1_700_000_000_000  # the simulator's clock: event time T0 + n at step n + 1


class Collector:
    """Consumes a feed's batches in the background."""

    def __init__(self, feed: BinanceFeed) -> None:
        self.feed = feed
        self.ticks: list[Tick] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for batch in self.feed.batches():
            self.ticks.extend(batch)


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Poll `predicate` (state of the feed and simulator tasks) until true, or fail."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the state belongs to other tasks
            await asyncio.sleep(0.005)


def dropped(reason: str) -> float:
    labels = {"venue": "binance", "reason": reason}
    return REGISTRY.get_sample_value("hm_feed_messages_dropped_total", labels) or 0.0


@pytest.fixture
async def sim() -> AsyncIterator[BinanceSimulator]:
    clock = itertools.count(T0).__next__
    async with BinanceSimulator(SYMBOLS, seed=7, tick_interval_ms=5, clock=clock) as simulator:
        yield simulator


def make_feed(url: str, symbols: Sequence[str] = SYMBOLS, **overrides: float) -> BinanceFeed:
    settings: dict[str, float] = {"backoff_initial_s": 0.02, "backoff_max_s": 0.1}
    settings.update(overrides)
    config = FeedConfig("binance", tuple(symbols), url=url, **settings)  # type: ignore[arg-type]
    return BinanceFeed(config)


@pytest.fixture
async def running(sim: BinanceSimulator) -> AsyncIterator[Collector]:
    feed = make_feed(sim.url, silence_timeout_s=5.0)
    await feed.start()
    collector = Collector(feed)
    await until(lambda: len(collector.ticks) >= len(SYMBOLS))
    yield collector
    await feed.stop()
    await collector.task


async def test_ticks_arrive_for_every_symbol(running: Collector) -> None:
    await until(lambda: {t.symbol for t in running.ticks} == set(SYMBOLS))


async def test_tick_prices_are_the_simulators(running: Collector) -> None:
    await until(lambda: len(running.ticks) >= 40)
    ticks = list(running.ticks)
    board = QuoteBoard(PricePaths(UNIVERSE, 7), SYMBOLS, seed=7)
    expected: dict[tuple[str, int], float] = {}
    for _ in range(max(t.ts_ms for t in ticks) - T0 + 1):
        board.step()
        expected.update({(s, T0 + board.steps - 1): p for s, p in board.last_prices().items()})
    assert [t.price for t in ticks] == [expected[(t.symbol, t.ts_ms)] for t in ticks]


async def test_the_feed_reports_subscribed(running: Collector) -> None:
    await until(lambda: running.feed.status.state is FeedState.SUBSCRIBED)


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        ("this is not json", "malformed_json"),
        ('{"hello": "world"}', "unknown_shape"),
        (
            '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","p":"x","T":1}}',
            "bad_field",
        ),
        (
            '{"stream":"xrpusdt@trade","data":{"e":"trade","s":"XRPUSDT","p":"2","T":1}}',
            "unknown_symbol",
        ),
        ('{"error":{"code":2,"msg":"Invalid request"},"id":99}', "error_reply"),
    ],
)
async def test_garbage_is_counted_in_metrics_and_status(
    sim: BinanceSimulator, running: Collector, garbage: str, reason: str
) -> None:
    before = dropped(reason)
    sim.send_raw(garbage)
    await until(lambda: running.feed.status.dropped.get(reason) == 1)
    assert (dropped(reason) - before, running.feed.drop_samples[reason]) == (
        1.0,
        [garbage.encode()],
    )


async def test_good_ticks_keep_flowing_on_the_same_connection_after_garbage(
    sim: BinanceSimulator, running: Collector
) -> None:
    sim.send_raw("this is not json")
    await until(lambda: running.feed.status.dropped.get("malformed_json") == 1)
    seen = len(running.ticks)
    await until(lambda: len(running.ticks) >= seen + 2 * len(SYMBOLS))
    assert (sim.connections_total, running.feed.status.reconnects) == (1, 0)


async def test_a_dropped_connection_is_reconnected(
    sim: BinanceSimulator, running: Collector
) -> None:
    sim.drop_connections()
    await until(lambda: running.feed.status.reconnects == 1 and sim.connections_open == 1)


async def test_a_reconnect_is_counted_in_metrics(sim: BinanceSimulator, running: Collector) -> None:
    before = REGISTRY.get_sample_value("hm_feed_reconnects_total", {"venue": "binance"}) or 0.0
    sim.drop_connections()
    await until(lambda: running.feed.status.reconnects == 1)
    after = REGISTRY.get_sample_value("hm_feed_reconnects_total", {"venue": "binance"})
    assert after == before + 1


async def test_a_reconnect_subscribes_every_symbol_again(
    sim: BinanceSimulator, running: Collector
) -> None:
    sim.drop_connections()
    await until(lambda: sim.subscribe_requests == 2)
    last = sim.subscribe_log[-1]
    assert (last.connection, sorted(last.params)) == (
        2,
        ["btcusdt@trade", "dogeusdt@trade", "ethusdt@trade", "solusdc@trade"],
    )


async def test_ticks_flow_again_after_a_reconnect(
    sim: BinanceSimulator, running: Collector
) -> None:
    sim.drop_connections()
    await until(lambda: running.feed.status.reconnects == 1)
    seen = len(running.ticks)
    await until(lambda: {t.symbol for t in running.ticks[seen:]} == set(SYMBOLS))


async def test_a_stall_longer_than_the_silence_timeout_reconnects(sim: BinanceSimulator) -> None:
    feed = make_feed(sim.url, silence_timeout_s=0.2)
    await feed.start()
    collector = Collector(feed)
    await until(lambda: len(collector.ticks) > 0)
    sim.stall(0.5)
    await until(lambda: feed.status.reconnects >= 1)
    seen = len(collector.ticks)
    await until(lambda: len(collector.ticks) > seen)  # and data again once the stall is over
    await feed.stop()
    await collector.task


async def test_a_full_queue_blocks_without_dropping_or_reconnecting(sim: BinanceSimulator) -> None:
    feed = make_feed(sim.url, queue_size=4, silence_timeout_s=0.2)
    await feed.start()
    await asyncio.sleep(0.6)  # nobody consumes: the reader waits on the full queue
    collector = Collector(feed)
    await until(lambda: len(collector.ticks) >= 400)
    await feed.stop()
    await collector.task
    btc = [t.ts_ms for t in collector.ticks if t.symbol == "BTC/USDT"]
    assert (feed.status.reconnects, btc) == (0, list(range(btc[0], btc[0] + len(btc))))


async def test_stop_ends_batches_and_leaves_no_task(sim: BinanceSimulator) -> None:
    before = asyncio.all_tasks()
    feed = make_feed(sim.url)
    await feed.start()
    collector = Collector(feed)
    await until(lambda: len(collector.ticks) > 0)
    await feed.stop()
    await asyncio.wait_for(collector.task, 1.0)
    assert (asyncio.all_tasks() - before, feed.status.state) == (set(), FeedState.STOPPED)


async def test_tick_counter_matches_the_status_after_stop(sim: BinanceSimulator) -> None:
    before = REGISTRY.get_sample_value("hm_feed_ticks_total", {"venue": "binance"}) or 0.0
    feed = make_feed(sim.url)
    await feed.start()
    collector = Collector(feed)
    await until(lambda: len(collector.ticks) >= 10)
    await feed.stop()
    await collector.task
    after = REGISTRY.get_sample_value("hm_feed_ticks_total", {"venue": "binance"})
    assert after == before + feed.status.ticks


async def test_stop_sets_the_connected_gauge_to_zero(sim: BinanceSimulator) -> None:
    feed = make_feed(sim.url)
    await feed.start()
    await until(lambda: feed.status.state is FeedState.SUBSCRIBED)
    await feed.stop()
    assert REGISTRY.get_sample_value("hm_feed_connected", {"venue": "binance"}) == 0.0


async def test_many_symbols_are_subscribed_in_paced_chunks() -> None:
    quotes = ("USDT", "USDC", "USD", "FDUSD", *(a.base for a in UNIVERSE))
    symbols = [f"{a.base}/{q}" for a in UNIVERSE for q in quotes if q != a.base][:450]
    async with BinanceSimulator(symbols, tick_interval_ms=50) as simulator:
        feed = make_feed(simulator.url, symbols)
        await feed.start()
        await until(lambda: feed.status.state is FeedState.SUBSCRIBED)
        await feed.stop()
    log = simulator.subscribe_log
    assert [len(r.params) for r in log] == [200, 200, 50]
    times = [r.at for r in log]
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 4  # Binance allows 5 messages/s; one slot stays free for a pong


# The simulator speaks Binance to any client ------------------------------------------------


async def test_simulator_lists_subscriptions_in_order(sim: BinanceSimulator) -> None:
    async with connect(sim.url + "/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 1}))
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 2}))
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
        replies = [m for m in [json.loads(await ws.recv()) for _ in range(30)] if "id" in m]
    assert replies[-1] == {"result": ["ethusdt@trade", "btcusdt@aggTrade"], "id": 3}


async def test_simulator_raw_stream_path_sends_bare_events(sim: BinanceSimulator) -> None:
    async with connect(sim.url + "/ws/btcusdt@trade") as ws:
        event = json.loads(await ws.recv())
    assert (event["e"], event["s"], type(event["p"]), event["T"] - T0 >= 0) == (
        "trade",
        "BTCUSDT",
        str,
        True,
    )


async def test_simulator_combined_path_wraps_events(sim: BinanceSimulator) -> None:
    async with connect(sim.url + "/stream?streams=ethusdt@miniTicker/solusdc@bookTicker") as ws:
        streams = {json.loads(await ws.recv())["stream"] for _ in range(4)}
    assert streams == {"ethusdt@miniTicker", "solusdc@bookTicker"}


async def test_simulator_answers_an_unknown_method_with_a_binance_error(
    sim: BinanceSimulator,
) -> None:
    async with connect(sim.url + "/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBEE", "params": [], "id": 5}))
        reply = json.loads(await ws.recv())
    assert (reply["error"]["code"], reply["id"]) == (2, 5)


async def test_simulator_disconnects_a_client_over_5_requests_per_second(
    sim: BinanceSimulator,
) -> None:
    async with connect(sim.url + "/ws") as ws:
        for n in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": n}))
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
