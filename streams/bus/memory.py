"""The in-process bus: Kafka's semantics without a broker, for the daemon's default and tests.

Topics have `config.partitions` partitions; a key picks its partition by CRC-32 (stable
across processes, unlike `hash()`); offsets grow per partition. Consumer groups keep
committed offsets: a new member resumes from them, partitions are split between the
members of a group, and every group sees every record. Each partition retains at most
`config.memory_retention_records` records; a consumer that falls behind that jumps to the
oldest record still held and the skipped records are counted and logged.

Unlike an auto-creating broker, publishing to or subscribing to a topic that
`ensure_topics` never created is an error, so a missing `ensure_topics` shows up here
rather than on a production cluster with auto-creation turned off.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from zlib import crc32

from prometheus_client import Counter, Gauge

from streams.bus.interface import (
    BusConfig,
    ConsumerProgress,
    PartitionProgress,
    ProducerStatus,
    Record,
)
from streams.errors import BusError
from streams.metrics import BUS_CONSUMED, BUS_CONSUMER_LAG, BUS_PRODUCED

__all__ = ["MemoryBus", "MemoryConsumer", "MemoryProducer", "partition_for_key"]

log = logging.getLogger(__name__)


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions`: CRC-32, stable across runs and hosts."""
    return crc32(key) % partitions


class _Partition:
    """One partition's log: `records[i].offset == base + i`, trimmed in chunks."""

    __slots__ = ("base", "index", "records", "topic")

    def __init__(self, topic: str, index: int) -> None:
        self.topic = topic
        self.index = index
        self.base = 0
        self.records: list[Record] = []

    @property
    def end(self) -> int:
        return self.base + len(self.records)


class _Topic:
    __slots__ = ("consumed", "name", "next_unkeyed", "partitions", "produced", "waiters")

    def __init__(self, name: str, partitions: int) -> None:
        self.name = name
        self.partitions = [_Partition(name, i) for i in range(partitions)]
        self.produced: Counter = BUS_PRODUCED.labels(name)
        self.consumed: Counter = BUS_CONSUMED.labels(name)
        self.waiters: list[asyncio.Future[None]] = []
        self.next_unkeyed = 0  # unkeyed records rotate over partitions, one call at a time

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _Claim:
    """A partition a consumer owns, and its position (the next offset it will read)."""

    __slots__ = ("dirty", "lag_gauge", "partition", "position", "start")

    def __init__(self, partition: _Partition, position: int, group_id: str) -> None:
        self.partition = partition
        self.position = position
        self.start = position
        self.dirty = False  # advanced since the last commit
        self.lag_gauge: Gauge = BUS_CONSUMER_LAG.labels(
            partition.topic, str(partition.index), group_id
        )


class _Group:
    """Committed offsets and current members of one consumer group."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.committed: dict[tuple[str, int], int] = {}
        self.members: list[MemoryConsumer] = []


class MemoryBus:
    """The in-process implementation of `Bus`; one instance is one shared log."""

    def __init__(self, config: BusConfig) -> None:
        if config.partitions < 1:
            raise BusError(f"bus partitions must be at least 1, got {config.partitions}")
        if config.memory_retention_records < 1:
            raise BusError(
                "memory_retention_records must be at least 1, "
                f"got {config.memory_retention_records}"
            )
        self._config = config
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self.retention = config.memory_retention_records
        # Physical trimming happens in chunks (a list delete is a memmove); readers see
        # the exact retention limit regardless.
        self._trim_slack = max(1024, self.retention // 4)

    @property
    def description(self) -> str:
        return (
            f"in-process bus ({self._config.partitions} partitions per topic, "
            f"{self.retention} records retained per partition)"
        )

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        for name in topics:
            if name not in self._topics:
                self._topics[name] = _Topic(name, self._config.partitions)

    async def watch_topics(self, topics: Sequence[str], every_s: float) -> None:
        """Nothing to watch: the in-process bus cannot lose a topic while it runs."""
        return None

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)

    def consumer(
        self, topics: Sequence[str], group_id: str, *, from_beginning: bool = False
    ) -> MemoryConsumer:
        return MemoryConsumer(self, topics, group_id, from_beginning=from_beginning)

    def _topic(self, name: str) -> _Topic:
        """The topic named `name`; BusError if `ensure_topics` never created it."""
        try:
            return self._topics[name]
        except KeyError:
            raise BusError(
                f"topic {name!r} does not exist on the in-process bus; "
                "call ensure_topics() with it before publishing or subscribing"
            ) from None

    def _logical_start(self, partition: _Partition) -> int:
        """The oldest offset still retained in `partition`."""
        return max(partition.base, partition.end - self.retention)

    def _append(self, topic: _Topic, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Append records to their partitions (by key), then wake waiting consumers."""
        ts = time.time_ns() // 1_000_000
        parts = topic.partitions
        count = len(parts)
        name = topic.name
        unkeyed: _Partition | None = None
        for key, value in items:
            if key is None:
                if unkeyed is None:
                    unkeyed = parts[topic.next_unkeyed % count]
                    topic.next_unkeyed += 1
                part = unkeyed
            else:
                part = parts[crc32(key) % count]
            records = part.records
            records.append(Record(name, part.index, part.base + len(records), key, value, ts))
        limit = self.retention + self._trim_slack
        for part in parts:
            if len(part.records) > limit:
                excess = len(part.records) - self.retention
                del part.records[:excess]
                part.base += excess
        topic.produced.inc(len(items))
        if topic.waiters:
            topic.wake()

    def _join(self, member: MemoryConsumer) -> None:
        group = self._groups.setdefault(member.group_id, _Group(member.group_id))
        group.members.append(member)
        self._rebalance(group)

    def _leave(self, member: MemoryConsumer) -> None:
        group = self._groups.get(member.group_id)
        if group is None or member not in group.members:
            return
        group.members.remove(member)
        self._rebalance(group)

    def _commit(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        self._groups[group_id].committed.update(offsets)

    def _committed(self, group_id: str) -> dict[tuple[str, int], int]:
        group = self._groups.get(group_id)
        return group.committed if group is not None else {}

    def _rebalance(self, group: _Group) -> None:
        """Split each topic's partitions round-robin over the members subscribed to it."""
        wanted: dict[MemoryConsumer, list[_Partition]] = {m: [] for m in group.members}
        topics = {name for member in group.members for name in member.topic_names}
        for name in sorted(topics):
            subscribers = [m for m in group.members if name in m.topic_names]
            for part in self._topics[name].partitions:
                wanted[subscribers[part.index % len(subscribers)]].append(part)
        for member, parts in wanted.items():
            member._assign(parts, group.committed)
        for name in topics:
            self._topics[name].wake()


class MemoryProducer:
    """Publishes into a `MemoryBus`; delivery is immediate, so `flush` has nothing to wait for."""

    def __init__(self, bus: MemoryBus) -> None:
        self._bus = bus
        self._started = False
        self._delivered = 0
        self._last_delivery: float | None = None

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if not self._started:
            raise BusError("in-process producer is not started; call start() first")
        self._bus._append(self._bus._topic(topic), ((key, value),))
        self._delivered += 1
        self._last_delivery = time.monotonic()

    async def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        if not self._started:
            raise BusError("in-process producer is not started; call start() first")
        if items:
            self._bus._append(self._bus._topic(topic), items)
            self._delivered += len(items)
            self._last_delivery = time.monotonic()

    async def flush(self) -> None:
        return None

    def status(self) -> ProducerStatus:
        return ProducerStatus(delivered=self._delivered, last_delivery=self._last_delivery)


class MemoryConsumer:
    """A consumer-group member on a `MemoryBus`."""

    def __init__(
        self, bus: MemoryBus, topics: Sequence[str], group_id: str, *, from_beginning: bool
    ) -> None:
        if not topics:
            raise BusError("a consumer needs at least one topic")
        self._bus = bus
        self.topic_names = tuple(dict.fromkeys(topics))
        self.group_id = group_id
        self._from_beginning = from_beginning
        self._claims: list[_Claim] = []
        self._rotation = 0
        self._started = False
        self.lost_records = 0  # skipped because retention trimmed them before they were read

    async def start(self) -> None:
        if self._started:
            return
        for name in self.topic_names:
            self._bus._topic(name)  # fail now, clearly, for a topic never created
        self._started = True
        self._bus._join(self)

    async def stop(self) -> None:
        """Leave the group; what was returned but not committed goes to the next owner."""
        if not self._started:
            return
        self._started = False
        self._bus._leave(self)
        self._claims = []
        for name in self.topic_names:  # end a get_batch still waiting in another task
            self._bus._topic(name).wake()

    def _assign(self, partitions: list[_Partition], committed: dict[tuple[str, int], int]) -> None:
        """Take `partitions` (called by the bus on a rebalance), keeping known positions."""
        kept = {claim.partition: claim for claim in self._claims}
        claims = []
        for part in partitions:
            claim = kept.get(part)
            if claim is None:
                position = committed.get((part.topic, part.index))
                if position is None:
                    position = self._bus._logical_start(part) if self._from_beginning else part.end
                claim = _Claim(part, position, self.group_id)
            claims.append(claim)
        self._claims = claims

    async def get_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        if not self._started:
            raise BusError("in-process consumer is not started; call start() first")
        batch = self._take(max_records)
        if batch or timeout_s <= 0:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not batch:
            remaining = deadline - loop.time()
            if remaining <= 0 or not self._started:
                break
            waiter: asyncio.Future[None] = loop.create_future()
            topics = [self._bus._topic(name) for name in self.topic_names]
            for topic in topics:
                topic.waiters.append(waiter)
            try:
                await asyncio.wait((waiter,), timeout=remaining)
            finally:
                for topic in topics:
                    if waiter in topic.waiters:
                        topic.waiters.remove(waiter)
            batch = self._take(max_records)
        return batch

    async def commit(self) -> None:
        """Commit the positions after everything `get_batch` has returned so far."""
        if not self._started:
            raise BusError("in-process consumer is not started; call start() first")
        offsets = {}
        for claim in self._claims:
            if claim.dirty:
                offsets[(claim.partition.topic, claim.partition.index)] = claim.position
                claim.dirty = False
        if offsets:
            self._bus._commit(self.group_id, offsets)

    def _take(self, max_records: int) -> list[Record]:
        claims = self._claims
        if not claims:
            return []
        batch: list[Record] = []
        remaining = max_records
        start = self._rotation % len(claims)
        self._rotation += 1  # a full partition does not starve the others
        consumed: dict[str, int] = {}
        for claim in itertools.chain(claims[start:], claims[:start]):
            part = claim.partition
            end = part.end
            if claim.position >= end:
                continue
            oldest = self._bus._logical_start(part)
            if claim.position < oldest:
                self._record_loss(claim, oldest)
            count = min(end - claim.position, remaining)
            first = claim.position - part.base
            batch.extend(part.records[first : first + count])
            claim.position += count
            claim.dirty = True
            consumed[part.topic] = consumed.get(part.topic, 0) + count
            remaining -= count
            if remaining <= 0:
                break
        for name, count in consumed.items():
            self._bus._topic(name).consumed.inc(count)
        return batch

    async def progress(self) -> ConsumerProgress:
        """Per owned partition: log end, committed offset, position; sets the lag gauge."""
        if not self._started:
            return ConsumerProgress(self.group_id, assigned=False, error="not started")
        committed = self._bus._committed(self.group_id)
        partitions = []
        for claim in self._claims:
            part = claim.partition
            progress = PartitionProgress(
                part.topic,
                part.index,
                part.end,
                committed.get((part.topic, part.index)),
                claim.position,
                claim.start,
            )
            claim.lag_gauge.set(progress.lag or 0)
            partitions.append(progress)
        return ConsumerProgress(self.group_id, assigned=True, partitions=tuple(partitions))

    def _record_loss(self, claim: _Claim, oldest: int) -> None:
        lost = oldest - claim.position
        self.lost_records += lost
        part = claim.partition
        log.warning(
            "consumer fell behind the in-process bus retention; records skipped",
            extra={
                "topic": part.topic,
                "partition": part.index,
                "group": self.group_id,
                "lost_records": lost,
                "retention": self._bus.retention,
            },
        )
        claim.position = oldest
        claim.dirty = True
