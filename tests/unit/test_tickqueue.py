"""TickQueue: backpressure on a full queue, arrival order, batches, and how it ends."""

from __future__ import annotations

import asyncio

import pytest

from streams.errors import FeedError
from streams.feeds.tickqueue import MAX_BATCH, Overflow, TickQueue
from streams.ticks import Tick


def tick(n: int) -> Tick:
    return Tick("binance", "BTC/USDT", "BTC", "USDT", 100.0 + n, n + 1, n)


async def test_a_full_queue_blocks_the_producer_until_a_batch_is_taken() -> None:
    queue = TickQueue("test", 2)
    await queue.put([tick(0)])
    await queue.put([tick(1)])
    third = asyncio.create_task(queue.put([tick(2)]))
    await asyncio.sleep(0.01)
    assert not third.done() and queue.blocked
    batches = queue.batches()
    first = await anext(batches)
    await asyncio.wait_for(third, 1.0)
    assert [t.ts_ms for t in first] == [1, 2] and not queue.blocked


async def test_ticks_come_out_in_arrival_order_across_waiting_producers() -> None:
    queue = TickQueue("test", 1)
    producers = [asyncio.create_task(queue.put([tick(n)])) for n in range(20)]
    seen: list[int] = []
    batches = queue.batches()
    while len(seen) < 20:
        seen.extend(t.ts_ms - 1 for t in await anext(batches))
    await asyncio.gather(*producers)
    assert seen == list(range(20))


async def test_a_batch_is_capped_near_max_batch() -> None:
    queue = TickQueue("test", 10_000)
    for n in range(MAX_BATCH + 10):
        await queue.put([tick(n)])
    first = await anext(queue.batches())
    assert len(first) == MAX_BATCH


async def test_finish_ends_batches_after_what_was_queued() -> None:
    queue = TickQueue("test", 10)
    await queue.put([tick(0), tick(1)])
    queue.finish(None)
    assert [len(b) async for b in queue.batches()] == [2]


async def test_a_crash_is_raised_by_batches_as_a_feed_error() -> None:
    queue = TickQueue("venue-x", 10)
    queue.finish(RuntimeError("boom"))
    with pytest.raises(FeedError, match="venue-x feed failed"):
        await anext(queue.batches())


def sym(symbol: str, n: int) -> Tick:
    base, quote = symbol.split("/")
    return Tick("binance", symbol, base, quote, 100.0 + n, n, n)


def test_try_put_refuses_a_full_queue_and_leaves_it_as_it_was() -> None:
    queue = TickQueue("test", 1)
    assert queue.try_put([tick(0)]) is True
    assert queue.try_put([tick(1)]) is False


def test_the_overflow_keeps_order_under_its_cap_and_the_newest_per_symbol_past_it() -> None:
    overflow = Overflow(3)
    a1, b1, a2, a3 = sym("A/USD", 1), sym("B/USD", 2), sym("A/USD", 3), sym("A/USD", 4)
    assert overflow.add([a1, b1]) == 0
    assert overflow.add([a2, a3]) == 2  # 4 held > 3: A keeps only its newest (a3)
    assert overflow._ticks == [a3, b1]


async def test_the_overflow_forwards_in_order_as_the_queue_drains() -> None:
    queue, overflow = TickQueue("test", 1), Overflow(100)
    queue.try_put([tick(0)])
    overflow.add([tick(1)])
    overflow.add([tick(2)])
    forwarder = asyncio.create_task(overflow.forward(queue))
    await asyncio.sleep(0.01)
    assert not overflow.empty  # its batch waits for room
    batches = queue.batches()
    got = [t.ts_ms for t in await anext(batches)]
    got += [t.ts_ms for t in await anext(batches)]
    forwarder.cancel()
    assert got == [1, 2, 3] and overflow.empty
