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


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record: where it came from, and its key and value bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


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
    fetch_max_records: int = 5_000
    fetch_max_wait_ms: int = 500  # how long a fetch may wait for data (tansu waits it all out)
    session_timeout_ms: int = 10_000  # consumer group; a real cluster rejects < 6000
    heartbeat_interval_ms: int = 3_000
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


class Consumer(Protocol):
    """Reads batches as a group member; `commit` records what has been processed."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def get_batch(self, max_records: int, timeout_s: float) -> list[Record]: ...

    async def commit(self) -> None: ...


class Bus(Protocol):
    """Makes producers and consumers on one transport, and ensures topics exist."""

    @property
    def description(self) -> str: ...

    async def ensure_topics(self, topics: Sequence[str]) -> None: ...

    def producer(self) -> Producer: ...

    def consumer(
        self, topics: Sequence[str], group_id: str, *, from_beginning: bool = False
    ) -> Consumer: ...
