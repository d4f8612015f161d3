"""Long-lived objects out of the cyclic collector's walks (monitor/heap.py, streams' Record).

A full collection walks every tracked container object in generation 2; the stalls of
issue 14 were such walks over objects that live as long as the process.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from monitor import heap
from monitor.app import make_pipeline
from monitor.bench.lots import LotPlan, bench_settings, design_lots
from monitor.bench.market import MarketSpec
from streams.bus.interface import BusConfig, Record
from streams.bus.memory import MemoryBus


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (other tests expect a normal heap)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _walked(obj: object) -> bool:
    """Whether a full collection would visit `obj` (it is in one of the generations)."""
    return any(o is obj for g in (0, 1, 2) for o in gc.get_objects(generation=g))


def test_settle_takes_built_state_out_of_every_generation(unfrozen: None) -> None:
    book = {"lots": [[n] for n in range(1000)]}  # long-lived containers, built at start
    assert _walked(book)
    frozen = heap.settle()
    assert frozen >= 1000 and gc.get_freeze_count() == frozen
    assert not _walked(book) and not _walked(book["lots"][0])
    assert book["lots"][999] == [999]  # frozen objects are still alive and usable


def test_freeze_new_takes_a_rebuilt_book_out_without_collecting(unfrozen: None) -> None:
    heap.settle()
    before = gc.get_freeze_count()
    rebuilt = [[n] for n in range(500)]
    heap.freeze_new()
    assert gc.get_freeze_count() >= before + 500
    assert not _walked(rebuilt)


def test_a_record_is_not_tracked_by_the_collector() -> None:
    assert not gc.is_tracked(Record("hm.ticks", 0, 7, b"k", b"v", 1_700_000_000_000))


def test_records_the_memory_bus_retains_are_not_walked() -> None:
    async def retained() -> list[Record]:
        bus = MemoryBus(BusConfig(partitions=1, offset_reset="earliest"))
        await bus.ensure_topics(["t"])
        consumer = bus.consumer(["t"], "g")
        await consumer.start()
        producer = bus.producer()
        await producer.start()
        for n in range(50):
            await producer.publish("t", b"k", str(n).encode())
        records = await consumer.get_batch(100, 1.0)
        await consumer.stop()
        await producer.stop()
        return list(records)

    records = asyncio.run(retained())
    assert len(records) == 50
    assert not any(gc.is_tracked(r) for r in records)


def test_release_hands_frozen_objects_back(unfrozen: None) -> None:
    kept = [[n] for n in range(100)]
    heap.settle()
    heap.release()
    assert gc.get_freeze_count() == 0 and _walked(kept)


def test_a_pipeline_freezes_while_it_runs_and_releases_when_it_ends(unfrozen: None) -> None:
    settings = bench_settings()  # the in-process bus
    lots = design_lots(LotPlan(200, MarketSpec(assets=2, seed=3), 1_000), settings).frame
    pipeline = make_pipeline(settings, lots, ingest=False, status_out=None)
    book = pipeline.detector.book if pipeline.detector is not None else None
    seen: dict[str, object] = {}

    async def until() -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["book walked"] = _walked(book)

    asyncio.run(pipeline.run(until))
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
    assert seen["book walked"] is False  # the book was out of the collector's walks
    assert gc.get_freeze_count() == 0  # and back in once the pipeline ended
