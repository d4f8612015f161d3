"""The bus contract, run against both transports: the in-process bus and Kafka (tansu).

Each test uses its own topic and group names: the session's broker is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from prometheus_client import REGISTRY

from streams.bus.broker import LocalBroker
from streams.bus.factory import make_bus
from streams.bus.interface import Bus, BusConfig, Consumer, Producer, Record
from streams.bus.kafka import LOCAL_BROKER_GROUP_TIMING, KafkaBus
from streams.bus.memory import MemoryBus
from streams.errors import BusError
from streams.ticks import Tick, decode_tick, encode_tick, tick_key

PARTITIONS = 3  # tansu auto-creates topics with 4, so a missed ensure_topics shows
ASSETS = ("BTC", "ETH", "SOL", "ADA", "XRP", "DOGE", "DOT", "AVAX", "LINK", "LTC", "ATOM", "UNI")
START_MS = 1_772_366_400_000  # 2026-03-01T12:00:00Z


class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=Lifecycle)


class Started(Protocol):
    """Starts a component and returns it, registering its stop for the test's teardown."""

    async def __call__(self, component: C, /) -> C: ...


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest) -> Bus:
    config = BusConfig(partitions=PARTITIONS, linger_ms=1)
    if request.param == "memory":
        return MemoryBus(config)
    bootstrap: str = request.getfixturevalue("kafka_broker")
    return KafkaBus(
        replace(config, bootstrap_servers=bootstrap), group_timing=LOCAL_BROKER_GROUP_TIMING
    )


@pytest.fixture
async def started() -> AsyncIterator[Started]:
    """Starts a producer or consumer and stops it when the test ends (stop is idempotent)."""
    async with AsyncExitStack() as stack:

        async def start(component: C) -> C:
            await component.start()
            stack.push_async_callback(component.stop)
            return component

        yield start


@pytest.fixture
async def topic(bus: Bus) -> str:
    name = f"hm.test.{uuid.uuid4().hex[:12]}"
    await bus.ensure_topics([name])
    return name


# tansu 0.6.0 answers ListOffsets(latest) with the last record batch's base offset + 1
# instead of the log end, so a "latest" consumer re-reads all but the first record of each
# partition's last batch. Fetch high watermarks are right. Real Kafka passes this test.
TANSU_LATEST_OFFSET_BUG = pytest.mark.xfail(
    reason="tansu 0.6.0: ListOffsets(latest) is the last batch's base offset + 1", strict=False
)


def group() -> str:
    return f"hm.test.group.{uuid.uuid4().hex[:12]}"


def ticks(count: int, assets: Sequence[str] = ASSETS, first: int = 0) -> list[tuple[bytes, bytes]]:
    """`count` encoded ticks cycling over `assets`, keyed by base asset; ts_ms grows by 1."""
    items = []
    for i in range(first, first + count):
        base = assets[i % len(assets)]
        tick = Tick(
            venue="binance",
            symbol=f"{base}/USDT",
            base=base,
            quote="USDT",
            price=100.0 + i * 0.25,
            ts_ms=START_MS + i,
            recv_ns=(START_MS + i) * 1_000_000 + 250_000,
            bid=99.9 + i * 0.25,
            ask=100.1 + i * 0.25,
        )
        items.append((tick_key(tick), encode_tick(tick)))
    return items


async def drain(
    consumer: Consumer, count: int, *, timeout_s: float = 10.0, settle_s: float = 0.0
) -> list[Record]:
    """Records until `count` arrived (or the timeout), then whatever comes within `settle_s`."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records += await consumer.get_batch(1000, min(0.5, deadline - time.monotonic()))
    if settle_s:
        records += await consumer.get_batch(1000, settle_s)
    return records


def values(records: Sequence[Record]) -> list[bytes]:
    return sorted(r.value for r in records)


async def test_ensure_topics_creates_a_missing_topic_with_the_configured_partitions(
    bus: Bus, started: Started
) -> None:
    name = f"hm.test.{uuid.uuid4().hex[:12]}"
    await bus.ensure_topics([name])
    producer = await started(bus.producer())
    consumer = await started(bus.consumer([name], group(), from_beginning=True))
    await producer.publish_many(name, ticks(48))
    await producer.flush()
    records = await drain(consumer, 48)
    assert {r.partition for r in records} == set(range(PARTITIONS))


async def test_records_with_the_same_key_share_one_partition(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    consumer = await started(bus.consumer([topic], group(), from_beginning=True))
    items = ticks(120)
    for key, value in items[:60]:
        await producer.publish(topic, key, value)
    await producer.publish_many(topic, items[60:])
    await producer.flush()
    partitions: dict[bytes | None, set[int]] = {}
    for record in await drain(consumer, 120):
        partitions.setdefault(record.key, set()).add(record.partition)
    assert {key: len(parts) for key, parts in partitions.items()} == {
        asset.encode(): 1 for asset in ASSETS
    }


async def test_records_with_the_same_key_arrive_in_publish_order(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    consumer = await started(bus.consumer([topic], group(), from_beginning=True))
    items = ticks(120)
    for key, value in items[:60]:
        await producer.publish(topic, key, value)
    await producer.publish_many(topic, items[60:])
    await producer.flush()
    received: dict[str, list[int]] = {}
    for record in await drain(consumer, 120):
        tick = decode_tick(record.value)
        received.setdefault(tick.base, []).append(tick.ts_ms)
    published: dict[str, list[int]] = {}
    for _, value in items:
        tick = decode_tick(value)
        published.setdefault(tick.base, []).append(tick.ts_ms)
    assert received == published


async def test_a_new_group_member_resumes_after_the_committed_offsets(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    name = group()
    first = await started(bus.consumer([topic], name, from_beginning=True))
    await producer.publish_many(topic, ticks(10))
    await producer.flush()
    await drain(first, 10)
    await first.commit()
    await first.stop()
    later = ticks(5, first=10)
    await producer.publish_many(topic, later)
    await producer.flush()
    second = await started(bus.consumer([topic], name, from_beginning=True))
    assert values(await drain(second, 5, settle_s=0.5)) == sorted(v for _, v in later)


async def test_records_returned_but_not_committed_are_delivered_again(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    name = group()
    first = await started(bus.consumer([topic], name, from_beginning=True))
    items = ticks(10)
    await producer.publish_many(topic, items)
    await producer.flush()
    await drain(first, 10)
    await first.stop()
    second = await started(bus.consumer([topic], name, from_beginning=True))
    assert values(await drain(second, 10, settle_s=0.5)) == sorted(v for _, v in items)


async def test_every_group_receives_every_record(bus: Bus, topic: str, started: Started) -> None:
    producer = await started(bus.producer())
    one = await started(bus.consumer([topic], group(), from_beginning=True))
    two = await started(bus.consumer([topic], group(), from_beginning=True))
    items = ticks(20)
    await producer.publish_many(topic, items)
    await producer.flush()
    expected = sorted(v for _, v in items)
    assert (values(await drain(one, 20)), values(await drain(two, 20))) == (expected, expected)


async def test_a_consumer_not_from_the_beginning_starts_at_the_end(
    bus: Bus, topic: str, started: Started, request: pytest.FixtureRequest
) -> None:
    if isinstance(bus, KafkaBus):
        request.applymarker(TANSU_LATEST_OFFSET_BUG)
    producer = await started(bus.producer())
    await producer.publish_many(topic, ticks(5))
    await producer.flush()
    consumer = await started(bus.consumer([topic], group(), from_beginning=False))
    later = ticks(3, first=5)
    await producer.publish_many(topic, later)
    await producer.flush()
    assert values(await drain(consumer, 3, settle_s=0.5)) == sorted(v for _, v in later)


async def test_get_batch_returns_nothing_once_the_timeout_passes(
    bus: Bus, topic: str, started: Started
) -> None:
    consumer = await started(bus.consumer([topic], group(), from_beginning=True))
    began = time.monotonic()
    batch = await consumer.get_batch(100, 0.5)
    elapsed = time.monotonic() - began
    assert batch == []
    assert 0.4 <= elapsed < 1.5


async def test_get_batch_returns_as_soon_as_a_record_arrives(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    consumer = await started(bus.consumer([topic], group(), from_beginning=True))
    began = time.monotonic()
    waiting = consumer.get_batch(100, 10.0)

    async def publish_soon() -> None:
        await asyncio.sleep(0.2)
        await producer.publish_many(topic, ticks(1))
        await producer.flush()

    batch, _ = await asyncio.gather(waiting, publish_soon())
    elapsed = time.monotonic() - began
    assert len(batch) == 1
    assert elapsed < 3.0


async def test_publishing_moves_the_produced_counter(
    bus: Bus, topic: str, started: Started
) -> None:
    producer = await started(bus.producer())
    await producer.publish_many(topic, ticks(6))
    await producer.publish(topic, *ticks(1)[0])
    await producer.flush()
    assert REGISTRY.get_sample_value("hm_bus_produced_total", {"topic": topic}) == 7


async def test_consuming_moves_the_consumed_counter(bus: Bus, topic: str, started: Started) -> None:
    producer = await started(bus.producer())
    consumer = await started(bus.consumer([topic], group(), from_beginning=True))
    await producer.publish_many(topic, ticks(7))
    await producer.flush()
    await drain(consumer, 7)
    assert REGISTRY.get_sample_value("hm_bus_consumed_total", {"topic": topic}) == 7


@pytest.mark.kafka
async def test_an_unreachable_broker_fails_fast_with_a_bus_error_naming_it() -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{reserved.getsockname()[1]}"
        producer = KafkaBus(BusConfig(bootstrap_servers=address)).producer()
        began = time.monotonic()
        with pytest.raises(BusError, match=f"cannot reach Kafka at {address}"):
            await producer.start()
    assert time.monotonic() - began < 8


@pytest.fixture
async def orphaned_producer(tansu_binary: Path) -> AsyncIterator[tuple[Producer, str]]:
    """A started Kafka producer, and its topic, whose broker has just gone away."""
    broker = LocalBroker(tansu_binary)
    await asyncio.to_thread(broker.start)
    try:
        bus = KafkaBus(BusConfig(bootstrap_servers=broker.bootstrap, request_timeout_ms=1_000))
        name = f"hm.test.{uuid.uuid4().hex[:12]}"
        await bus.ensure_topics([name])
        producer = bus.producer()
        await producer.start()
    finally:
        await asyncio.to_thread(broker.stop)
    yield producer, name
    await producer.stop()


@pytest.mark.kafka
async def test_flush_raises_when_records_could_not_be_delivered(
    orphaned_producer: tuple[Producer, str],
) -> None:
    producer, name = orphaned_producer
    await producer.publish_many(name, ticks(3))
    with pytest.raises(BusError, match="3 records were not delivered"):
        await producer.flush()


@pytest.mark.kafka
async def test_undelivered_records_move_the_produce_errors_counter(
    orphaned_producer: tuple[Producer, str],
) -> None:
    producer, name = orphaned_producer
    await producer.publish_many(name, ticks(3))
    with contextlib.suppress(BusError):
        await producer.flush()
    assert REGISTRY.get_sample_value("hm_bus_produce_errors_total", {"topic": name}) == 3


def test_make_bus_picks_kafka_when_bootstrap_servers_are_set() -> None:
    assert isinstance(make_bus(BusConfig(bootstrap_servers="127.0.0.1:9092")), KafkaBus)


def test_make_bus_picks_the_in_process_bus_without_bootstrap_servers() -> None:
    assert isinstance(make_bus(BusConfig()), MemoryBus)


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create `name` as an auto-creating broker would after a restart (its own count)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


@pytest.mark.kafka
@pytest.mark.timeout(120)
@pytest.mark.parametrize("recreated", ["by_us", "four"])
async def test_a_broker_killed_and_restarted_empty_loses_neither_producer_nor_consumer(
    tansu_binary: Path, caplog: pytest.LogCaptureFixture, recreated: str
) -> None:
    """Issue 10: kill -9 the broker and restart it empty on the same port.

    `by_us`: the topic is gone; the bus's topic watch re-creates it with 6 partitions
    and makes the clients reconnect (tansu takes writes for a topic it lost and then
    fails every request of those connections with error -1; before the fix the commit
    retried UnknownTopicOrPartition forever: detection stalled, ~50 log lines/s).
    `four`: the topic comes back with 4 partitions (what tansu auto-creates), not 6, and
    tansu cannot add partitions; before the fix the producer crashed with aiokafka's
    `Unrecognized partition`."""
    caplog.set_level("WARNING")
    broker = LocalBroker(tansu_binary)
    await asyncio.to_thread(broker.start)
    try:
        config = BusConfig(
            bootstrap_servers=broker.bootstrap,
            partitions=6,
            linger_ms=5,
            request_timeout_ms=5_000,
            # tansu takes writes to partitions it lacks: no error makes the clients refresh
            # their metadata, so in `four` they do it every second.
            metadata_max_age_ms=1_000 if recreated == "four" else 300_000,
        )
        bus = KafkaBus(config, group_timing=LOCAL_BROKER_GROUP_TIMING)
        name = f"hm.test.{uuid.uuid4().hex[:12]}"
        await bus.ensure_topics([name])
        producer = bus.producer()
        await producer.start()
        consumer = bus.consumer([name], group())
        await consumer.start()
        received: list[tuple[float, Record]] = []

        async def produce() -> None:
            for i in itertools.count():
                await producer.publish_many(name, ticks(12, first=12 * i))
                await asyncio.sleep(0.02)

        async def consume() -> None:
            while True:
                batch = await consumer.get_batch(1000, 0.5)
                received.extend((time.monotonic(), r) for r in batch)
                await consumer.commit()

        # As the pipeline does: the topics checked again when the broker answers again.
        watch = asyncio.create_task(bus.watch_topics([name], every_s=10.0))
        tasks = [asyncio.create_task(produce()), asyncio.create_task(consume()), watch]
        try:
            while not received:  # noqa: ASYNC110 (a list filled by another task)
                await asyncio.sleep(0.1)
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.start)
            restarted = time.monotonic()
            if recreated == "four":  # before the watch sees the topic missing
                await _create_topic(broker.bootstrap, name, 4)
            while not any(at > restarted + 1 for at, _ in received):
                assert time.monotonic() - restarted < 30, "consumption did not resume in 30 s"
                for task in tasks:
                    assert not task.done(), task.exception()
                await asyncio.sleep(0.2)
            resumed = time.monotonic() - restarted
            await asyncio.sleep(4.0)  # records keep flowing, over the 4 partitions there are
            for task in tasks:
                assert not task.done(), task.exception()
            steady = [r for at, r in received if at > restarted + 3]
            partitions = {r.partition for r in steady}
            if recreated == "four":
                assert steady and partitions <= {0, 1, 2, 3}
                with pytest.raises(BusError, match=r"has 4 partitions, \[kafka\] partitions = 6"):
                    await bus.ensure_topics([name])  # at start, a topic short of partitions
            else:
                assert steady and len(partitions) > 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.stop()
            await producer.stop()
    finally:
        await asyncio.to_thread(broker.stop)
    assert resumed < 30
    client_lines = [r for r in caplog.records if r.name.startswith(("aiokafka", "streams.bus"))]
    causes = {(r.name, str(r.msg)) for r in client_lines}
    # One line per cause per 10 s interval: the test runs well under 20 s after the kill.
    assert len(client_lines) <= 2 * len(causes), [r.getMessage() for r in client_lines]
