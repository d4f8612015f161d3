"""The bus interface every implementation (Kafka, in-process) provides.

A producer publishes keyed records to a topic; a consumer reads batches from topics as
a member of a group and commits what it has processed (at-least-once). Records with the
same key land on the same partition, in order. Lifecycles are explicit: nothing
connects in a constructor; `start()` connects, `stop()` flushes and disconnects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec


class Record(msgspec.Struct, frozen=True, gc=False):
    """One consumed record: where it came from, and its key and value bytes.

    Not tracked by the cyclic garbage collector (`gc=False`: it holds only strings, ints
    and bytes, so it can be in no cycle): the in-process bus retains up to
    `memory_retention_records` of them per partition, and as tracked objects every full
    collection walked them all (docs/performance.md, "Stalls").
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """Where a consumer group stands on one partition this member owns.

    `lag` is the records the group has not committed yet: the log end offset minus the
    committed offset (the offset this member started from while nothing is committed).
    Records fetched but not processed (a stuck detection) count as lag.
    """

    topic: str
    partition: int
    end: int | None  # log end offset: the offset the next record gets; None: not known
    committed: int | None  # where the group resumes; None: nothing committed
    position: int | None  # the next offset this member fetches; None: not known
    start: int | None = None  # the first offset this member fetched (nothing committed)

    @property
    def lag(self) -> int | None:
        done = self.committed if self.committed is not None else self.start
        if done is None:
            done = self.position
        if self.end is None or done is None:
            return None
        return max(0, self.end - done)


@dataclass(frozen=True, slots=True)
class ConsumerProgress:
    """A consumer's view of its group: whether it holds an assignment, and per partition."""

    group: str
    assigned: bool  # the group gave this member its partitions (maybe none: more members)
    partitions: tuple[PartitionProgress, ...] = ()
    error: str = ""  # why the broker could not be asked (progress then has no partitions)


@dataclass(frozen=True, slots=True)
class ProducerStatus:
    """What a producer has delivered and failed since it started, for health checks."""

    delivered: int = 0  # records confirmed by the broker
    failed: int = 0  # records whose delivery failed
    pending: int = 0  # batches handed over and not confirmed yet
    last_delivery: float | None = None  # time.monotonic() of the last confirmation
    last_failure: float | None = None  # time.monotonic() of the last failure
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class BusConfig:
    """Transport settings shared by both implementations (built from `[kafka]`)."""

    bootstrap_servers: str = ""  # empty: the in-process bus
    client_id: str = "harvest-monitor"
    partitions: int = 6  # for topics created when missing
    replication_factor: int = 1
    linger_ms: int = 5
    max_batch_bytes: int = 1_048_576
    compression: str | None = None  # None | "gzip" | "lz4" | "zstd" | "snappy"
    enable_idempotence: bool = False  # tansu (the test broker) cannot do InitProducerId
    acks: str = "1"  # "0" | "1" | "all"
    request_timeout_ms: int = 30_000
    metadata_max_age_ms: int = 300_000  # clients refresh topic metadata at least this often
    fetch_max_records: int = 5_000
    fetch_max_wait_ms: int = 500  # how long a fetch may wait for data (tansu waits it all out)
    session_timeout_ms: int = 10_000  # consumer group; a real cluster rejects < 6000
    heartbeat_interval_ms: int = 3_000
    offset_reset: str = "latest"  # "latest" | "earliest": where a group without offsets starts
    memory_retention_records: int = 200_000  # in-process bus: per partition


class Producer(Protocol):
    """Publishes keyed records; `publish` may buffer, `flush` waits for delivery."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None: ...

    async def publish_many(
        self, topic: str, items: Sequence[tuple[bytes | None, bytes]]
    ) -> None: ...

    async def flush(self) -> None: ...

    def status(self) -> ProducerStatus: ...


class Consumer(Protocol):
    """Reads batches as a group member; `commit` records what has been processed."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def get_batch(self, max_records: int, timeout_s: float) -> list[Record]: ...

    async def commit(self) -> None: ...

    async def progress(self) -> ConsumerProgress:
        """Log end, committed offset and position per owned partition, asked of the
        broker now (not what the last fetch saw); also sets `hm_bus_consumer_lag_records`."""
        ...


class Bus(Protocol):
    """Makes producers and consumers on one transport, and ensures topics exist."""

    @property
    def description(self) -> str: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """At start: create missing topics with the configured partitions; a topic with
        fewer partitions is grown, or a BusError says why it cannot be."""
        ...

    async def watch_topics(self, topics: Sequence[str], every_s: float) -> None:
        """Runs until cancelled: checks the topics again every `every_s` and after the
        broker comes back (a broker that restarted empty may have auto-created them with
        its own partition count); problems are logged and counted, never raised."""
        ...

    def producer(self) -> Producer: ...

    def consumer(
        self, topics: Sequence[str], group_id: str, *, from_beginning: bool = False
    ) -> Consumer: ...
