"""What only the in-process bus does: retention, its group assignment, strict topics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streams.bus.interface import BusConfig, Record
from streams.bus.memory import MemoryBus, MemoryConsumer, MemoryProducer, partition_for_key
from streams.errors import BusError

TOPIC = "hm.ticks"


def bus_with(partitions: int = 1, retention: int = 1_000) -> MemoryBus:
    return MemoryBus(BusConfig(partitions=partitions, memory_retention_records=retention))


@pytest.fixture
async def bus() -> MemoryBus:
    bus = bus_with(retention=5)
    await bus.ensure_topics([TOPIC])
    return bus


@pytest.fixture
async def producer(bus: MemoryBus) -> AsyncIterator[MemoryProducer]:
    producer = bus.producer()
    await producer.start()
    yield producer
    await producer.stop()


async def publish(producer: MemoryProducer, count: int, topic: str = TOPIC) -> None:
    await producer.publish_many(topic, [(b"BTC", b"tick %d" % i) for i in range(count)])


async def read(consumer: MemoryConsumer) -> list[Record]:
    return await consumer.get_batch(1_000, 0)


async def test_a_new_consumer_starts_at_the_oldest_retained_record(
    bus: MemoryBus, producer: MemoryProducer
) -> None:
    await publish(producer, 12)
    consumer = bus.consumer([TOPIC], "g", from_beginning=True)
    await consumer.start()
    assert [r.offset for r in await read(consumer)] == [7, 8, 9, 10, 11]


async def test_a_consumer_behind_the_retention_jumps_to_the_oldest_retained_record(
    bus: MemoryBus, producer: MemoryProducer
) -> None:
    consumer = bus.consumer([TOPIC], "g", from_beginning=True)
    await consumer.start()
    await publish(producer, 2)
    await read(consumer)
    await publish(producer, 10)
    assert [r.offset for r in await read(consumer)] == [7, 8, 9, 10, 11]


async def test_records_skipped_by_the_retention_are_counted(
    bus: MemoryBus, producer: MemoryProducer
) -> None:
    consumer = bus.consumer([TOPIC], "g", from_beginning=True)
    await consumer.start()
    await publish(producer, 2)
    await read(consumer)
    await publish(producer, 10)
    await read(consumer)
    assert consumer.lost_records == 5  # offsets 2..6


async def test_retention_keeps_offsets_growing_past_physical_trims() -> None:
    bus = bus_with(retention=3)
    await bus.ensure_topics([TOPIC])
    producer = bus.producer()
    await producer.start()
    for _ in range(5):
        await publish(producer, 1_000)  # well past the chunked physical trim
    consumer = bus.consumer([TOPIC], "g", from_beginning=True)
    await consumer.start()
    assert [r.offset for r in await read(consumer)] == [4_997, 4_998, 4_999]


async def test_members_of_one_group_split_the_partitions() -> None:
    bus = bus_with(partitions=4)
    await bus.ensure_topics([TOPIC])
    producer = bus.producer()
    await producer.start()
    one = bus.consumer([TOPIC], "g", from_beginning=True)
    two = bus.consumer([TOPIC], "g", from_beginning=True)
    await one.start()
    await two.start()
    await producer.publish_many(TOPIC, [(b"asset-%d" % i, b"tick") for i in range(64)])
    parts_one = {r.partition for r in await read(one)}
    parts_two = {r.partition for r in await read(two)}
    assert (len(parts_one), len(parts_two), parts_one | parts_two) == (2, 2, {0, 1, 2, 3})


async def test_a_leaving_member_hands_its_partitions_over_from_the_committed_offset() -> None:
    bus = bus_with(partitions=2)
    await bus.ensure_topics([TOPIC])
    producer = bus.producer()
    await producer.start()
    stays = bus.consumer([TOPIC], "g", from_beginning=True)
    leaves = bus.consumer([TOPIC], "g", from_beginning=True)
    await stays.start()
    await leaves.start()
    await producer.publish_many(TOPIC, [(b"asset-%d" % i, b"tick") for i in range(40)])
    await read(stays)
    left_behind = await read(leaves)  # returned, never committed
    await leaves.stop()
    handed_over = await read(stays)
    assert [(r.partition, r.offset) for r in handed_over] == [
        (r.partition, r.offset) for r in left_behind
    ]


async def test_publishing_to_a_topic_never_ensured_is_an_error(producer: MemoryProducer) -> None:
    with pytest.raises(BusError, match="ensure_topics"):
        await producer.publish("hm.nowhere", b"BTC", b"tick")


async def test_subscribing_to_a_topic_never_ensured_is_an_error(bus: MemoryBus) -> None:
    with pytest.raises(BusError, match="ensure_topics"):
        await bus.consumer(["hm.nowhere"], "g").start()


async def test_publishing_before_start_is_an_error(bus: MemoryBus) -> None:
    with pytest.raises(BusError, match="start"):
        await bus.producer().publish(TOPIC, b"BTC", b"tick")


def test_key_partitions_are_pinned_across_releases() -> None:
    # Changing the hash would move every asset to another partition: keep it CRC-32.
    keys = [b"BTC", b"ETH", b"SOL", b"ADA", b"XRP", b"DOGE"]
    assert [partition_for_key(k, 6) for k in keys] == [2, 5, 2, 2, 0, 4]
