"""The Kafka bus (aiokafka): topics on a real cluster, consumer groups, at-least-once commits.

Producers buffer (`linger_ms`, `max_batch_bytes`) and never wait per record; delivery
failures are counted in `hm_bus_produce_errors_total`, logged, and raised by the next
`flush()`. Consumers never auto-commit: `commit()` commits what `get_batch` returned.
Every connection attempt is bounded by `connect_timeout_s` and fails with a BusError
that names the bootstrap servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.codec import has_lz4, has_snappy, has_zstd
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.partitioner import murmur2
from prometheus_client import Counter

from streams.bus.interface import BusConfig, Record
from streams.errors import BusError
from streams.metrics import BUS_CONSUMED, BUS_CONSUMER_LAG, BUS_PRODUCE_ERRORS, BUS_PRODUCED

__all__ = ["LOCAL_BROKER_GROUP_TIMING", "GroupTiming", "KafkaBus", "KafkaConsumer", "KafkaProducer"]

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5.0
_LAG_INTERVAL_S = 1.0
_FAILURE_LOG_INTERVAL_S = 5.0
_PARTITION_CACHE_MAX = 65_536
_REBALANCE_ERRORS = (CommitFailedError, IllegalStateError, RebalanceInProgressError)


@dataclass(frozen=True, slots=True)
class GroupTiming:
    """Consumer-group timeouts. The defaults are Kafka's and suit a real cluster, which
    rejects session timeouts under 6 s; `LOCAL_BROKER_GROUP_TIMING` suits tansu."""

    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int | None = None  # None: the session timeout
    join_timeout_s: float = 60.0  # how long `Consumer.start` waits for its partitions


#: For the single local broker of tests and `bench`: tansu holds a first join for about
#: half the session timeout and, as it numbers generations from 0, aiokafka never sends
#: it a LeaveGroup, so the next member of the group waits for the session to expire.
LOCAL_BROKER_GROUP_TIMING = GroupTiming(
    session_timeout_ms=1_000, heartbeat_interval_ms=100, rebalance_timeout_ms=1_000
)


def _unreachable(servers: str, what: str, timeout_s: float, exc: BaseException | None) -> BusError:
    cause = f": {exc}" if exc is not None else ""
    return BusError(
        f"cannot reach Kafka at {servers} to {what} within {timeout_s:g} s{cause}. "
        "Check that the broker is running, that [kafka] bootstrap_servers lists its "
        "host:port (comma-separated), and that this host can reach it (firewall, DNS, "
        "the broker's advertised listeners)."
    )


async def _connect(servers: str, what: str, timeout_s: float, make: Callable[[], Any]) -> Any:
    """Start a client from `make()`, retrying refused connections until `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        client = make()
        close = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
        try:
            await asyncio.wait_for(client.start(), max(deadline - time.monotonic(), 0.01))
            return client
        except (KafkaConnectionError, KafkaTimeoutError, TimeoutError) as exc:
            await close()
            if time.monotonic() + delay >= deadline:
                raise _unreachable(servers, what, timeout_s, exc) from exc
        except KafkaError as exc:
            await close()
            raise BusError(f"Kafka at {servers} refused to {what}: {exc}") from exc
        except asyncio.CancelledError:
            await close()
            raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _acks(value: str) -> int | str:
    if value == "all":
        return "all"
    if value in ("0", "1"):
        return int(value)
    raise BusError(f'bus acks must be "0", "1" or "all", got {value!r}')


def _check_compression(codec: str | None) -> None:
    if codec is None or codec == "gzip":
        return
    if codec not in ("lz4", "snappy", "zstd"):
        raise BusError(
            f'bus compression must be none, "gzip", "lz4", "snappy" or "zstd": {codec!r}'
        )
    if not (has_lz4() and has_snappy() and has_zstd()):  # all three come from cramjam
        raise BusError(f"compression {codec!r} needs cramjam: pip install 'aiokafka[{codec}]'")


class KafkaBus:
    """The Kafka implementation of `Bus`."""

    def __init__(
        self,
        config: BusConfig,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        group_timing: GroupTiming = GroupTiming(),
    ) -> None:
        if not config.bootstrap_servers.strip():
            raise BusError("KafkaBus needs [kafka] bootstrap_servers (host:port)")
        self._config = config
        self._connect_timeout_s = connect_timeout_s
        self._group_timing = group_timing

    @property
    def description(self) -> str:
        return f"Kafka at {self._config.bootstrap_servers}"

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet; ones that do (or appear meanwhile) are kept."""
        config = self._config
        admin = await _connect(
            config.bootstrap_servers,
            "create topics",
            self._connect_timeout_s,
            lambda: AIOKafkaAdminClient(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                request_timeout_ms=config.request_timeout_ms,
            ),
        )
        try:
            await self._create_missing(admin, list(dict.fromkeys(topics)))
        finally:
            await admin.close()

    async def _create_missing(self, admin: AIOKafkaAdminClient, topics: list[str]) -> None:
        servers = self._config.bootstrap_servers
        try:
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if not missing:
                return
            response = await admin.create_topics(
                [
                    NewTopic(t, self._config.partitions, self._config.replication_factor)
                    for t in missing
                ]
            )
        except KafkaError as exc:
            raise BusError(f"cannot create topics {topics} on Kafka at {servers}: {exc}") from exc
        for topic, code, *message in response.topic_errors:
            error = for_code(code)
            if code == 0 or error is TopicAlreadyExistsError:  # created, or lost a race
                continue
            detail = message[0] if message and message[0] else error.__name__
            raise BusError(
                f"Kafka at {servers} refused to create topic {topic!r} with "
                f"{self._config.partitions} partitions x {self._config.replication_factor} "
                f"replicas: {detail}. Check [kafka] partitions and replication_factor "
                "(at most the number of brokers) and the client's ACLs."
            )
        log.info(
            "created Kafka topics",
            extra={"topics": missing, "partitions": self._config.partitions},
        )

    def producer(self) -> KafkaProducer:
        return KafkaProducer(self._config, connect_timeout_s=self._connect_timeout_s)

    def consumer(
        self, topics: Sequence[str], group_id: str, *, from_beginning: bool = False
    ) -> KafkaConsumer:
        return KafkaConsumer(
            self._config,
            topics,
            group_id,
            from_beginning=from_beginning,
            connect_timeout_s=self._connect_timeout_s,
            group_timing=self._group_timing,
        )


class KafkaProducer:
    """Buffers records into batches; delivery is confirmed (or reported) by `flush`."""

    def __init__(
        self, config: BusConfig, *, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    ) -> None:
        self._config = config
        self._connect_timeout_s = connect_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._pending = 0  # delivery futures not resolved yet
        self._idle: asyncio.Event | None = None
        self._failed = 0  # records whose delivery failed since the last flush
        self._last_error: BaseException | None = None
        self._unlogged_failures = 0
        self._failure_log_due = 0.0
        self._partitions: dict[int, dict[bytes, int]] = {}

    async def start(self) -> None:
        if self._producer is not None:
            return
        config = self._config
        acks = _acks(config.acks)
        _check_compression(config.compression)
        if config.enable_idempotence and acks != "all":
            raise BusError('enable_idempotence needs acks = "all" (and a broker that has it)')
        self._producer = await _connect(
            config.bootstrap_servers,
            "start a producer",
            self._connect_timeout_s,
            lambda: AIOKafkaProducer(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                linger_ms=config.linger_ms,
                max_batch_size=config.max_batch_bytes,
                request_timeout_ms=config.request_timeout_ms,
                acks=acks,
                compression_type=config.compression,
                enable_idempotence=config.enable_idempotence,
            ),
        )
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self) -> None:
        """Deliver what is buffered and disconnect; failures are logged, not raised."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        await producer.stop()
        await self._wait_idle()
        if self._failed:
            log.error(
                "Kafka producer stopped with undelivered records",
                extra={"failed_records": self._failed, "error": str(self._last_error)},
            )

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        producer = self._started()
        try:
            future = await producer.send(topic, value, key=key)
        except KafkaError as exc:
            BUS_PRODUCE_ERRORS.labels(topic).inc()
            raise BusError(f"Kafka producer cannot accept a record for {topic!r}: {exc}") from exc
        self._track(future, topic, 1)

    async def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Group by partition (the Java client's murmur2, like `send`) and send whole batches."""
        producer = self._started()
        if not items:
            return
        try:
            partitions = sorted(await producer.partitions_for(topic))
        except KafkaError as exc:
            BUS_PRODUCE_ERRORS.labels(topic).inc(len(items))
            raise BusError(f"no metadata for topic {topic!r} from Kafka: {exc}") from exc
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        cache = self._partitions.setdefault(len(partitions), {})
        if len(cache) > _PARTITION_CACHE_MAX:
            cache.clear()
        unkeyed = random.choice(partitions)  # one partition per call for key-less records
        for item in items:
            key = item[0]
            if key is None:
                partition = unkeyed
            else:
                partition = cache.get(key, -1)
                if partition < 0:
                    partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
                    cache[key] = partition
            by_partition.setdefault(partition, []).append(item)
        for partition, records in by_partition.items():
            await self._send_batches(producer, topic, partition, records)

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        records: list[tuple[bytes | None, bytes]],
    ) -> None:
        batch, count = producer.create_batch(), 0
        for key, value in records:
            while batch.append(key=key, value=value, timestamp=None) is None:  # batch full
                if count == 0:
                    BUS_PRODUCE_ERRORS.labels(topic).inc()
                    raise BusError(
                        f"a record of {len(value)} bytes for {topic!r} does not fit in a "
                        f"batch of max_batch_bytes={self._config.max_batch_bytes}"
                    )
                await self._send_batch(producer, batch, topic, partition, count)
                batch, count = producer.create_batch(), 0
            count += 1
        if count:
            await self._send_batch(producer, batch, topic, partition, count)

    async def _send_batch(
        self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int, count: int
    ) -> None:
        try:
            future = await producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            BUS_PRODUCE_ERRORS.labels(topic).inc(count)
            raise BusError(f"Kafka producer cannot accept a batch for {topic!r}: {exc}") from exc
        self._track(future, topic, count)

    async def flush(self) -> None:
        """Wait until every buffered record is delivered; BusError if any delivery failed."""
        producer = self._started()
        await producer.flush()
        await self._wait_idle()
        if self._failed:
            failed, error = self._failed, self._last_error
            self._failed, self._last_error = 0, None
            reason = str(error).rstrip(".") or type(error).__name__
            raise BusError(
                f"{failed} records were not delivered to Kafka at "
                f"{self._config.bootstrap_servers}: {reason}. Check the broker's health and "
                "the topic (it may have been deleted, or the cluster may be unreachable)."
            )

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise BusError("Kafka producer is not started; call start() first")
        return self._producer

    def _track(self, future: asyncio.Future[Any], topic: str, count: int) -> None:
        assert self._idle is not None
        self._pending += 1
        self._idle.clear()
        future.add_done_callback(functools.partial(self._delivered, topic, count))

    def _delivered(self, topic: str, count: int, future: asyncio.Future[Any]) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()
        error = (
            asyncio.CancelledError("delivery cancelled")
            if future.cancelled()
            else future.exception()
        )
        if error is None:
            BUS_PRODUCED.labels(topic).inc(count)
            return
        BUS_PRODUCE_ERRORS.labels(topic).inc(count)
        self._failed += count
        self._last_error = error
        self._unlogged_failures += count
        now = time.monotonic()
        if now >= self._failure_log_due:  # a broker outage fails many batches at once
            self._failure_log_due = now + _FAILURE_LOG_INTERVAL_S
            log.error(
                "Kafka delivery failed",
                extra={
                    "topic": topic,
                    "failed_records": self._unlogged_failures,
                    "error": str(error),
                },
            )
            self._unlogged_failures = 0

    async def _wait_idle(self) -> None:
        if self._idle is not None and self._pending:
            await self._idle.wait()


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Signals the first assignment; forgets positions of partitions a rebalance takes."""

    def __init__(self, positions: dict[TopicPartition, int]) -> None:
        self._positions = positions
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self._positions.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned.set()  # also when empty: more members than partitions


class KafkaConsumer:
    """A consumer-group member; never auto-commits."""

    def __init__(
        self,
        config: BusConfig,
        topics: Sequence[str],
        group_id: str,
        *,
        from_beginning: bool = False,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        group_timing: GroupTiming = GroupTiming(),
    ) -> None:
        if not topics:
            raise BusError("a consumer needs at least one topic")
        self._config = config
        self._topics = list(dict.fromkeys(topics))
        self._group_id = group_id
        self._from_beginning = from_beginning
        self._connect_timeout_s = connect_timeout_s
        self._timing = group_timing
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}  # next offset after what was returned
        self._consumed: dict[str, Counter] = {}
        self._lag_due = 0.0

    async def start(self) -> None:
        """Connect, join the group, and return once Kafka has assigned this member's partitions."""
        if self._consumer is not None:
            return
        config, timing = self._config, self._timing
        # Subscribed only once connected: the connect timeout bounds the connection, and
        # `join_timeout_s` the group join (which can take a while on a busy cluster).
        consumer = await _connect(
            config.bootstrap_servers,
            "start a consumer",
            self._connect_timeout_s,
            lambda: AIOKafkaConsumer(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                group_id=self._group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if self._from_beginning else "latest",
                request_timeout_ms=config.request_timeout_ms,
                session_timeout_ms=timing.session_timeout_ms,
                heartbeat_interval_ms=timing.heartbeat_interval_ms,
                rebalance_timeout_ms=timing.rebalance_timeout_ms,
                max_poll_records=config.fetch_max_records,
            ),
        )
        listener = _Rebalances(self._positions)
        consumer.subscribe(self._topics, listener=listener)
        try:
            await asyncio.wait_for(self._join(consumer, listener), timing.join_timeout_s)
        except TimeoutError:
            await consumer.stop()
            raise BusError(
                f"consumer group {self._group_id!r} got no partitions of {self._topics} from "
                f"Kafka at {config.bootstrap_servers} within {timing.join_timeout_s:g} s. "
                "The group may be stuck rebalancing (a member that does not rejoin) or the "
                "topics may not exist; check with kafka-consumer-groups.sh --describe "
                f"--group {self._group_id}."
            ) from None
        self._consumer = consumer

    @staticmethod
    async def _join(consumer: AIOKafkaConsumer, listener: _Rebalances) -> None:
        await listener.assigned.wait()
        # Resolve each starting offset now, so a "latest" consumer sees every record
        # published after start() returns (aiokafka would otherwise resolve it lazily).
        for tp in consumer.assignment():
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                await consumer.position(tp)

    async def stop(self) -> None:
        """Leave the group; records returned but not committed go to the next owner."""
        consumer, self._consumer = self._consumer, None
        self._positions.clear()
        if consumer is not None:
            await consumer.stop()

    async def get_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        consumer = self._started()
        try:
            data = await consumer.getmany(
                timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
            )
        except KafkaError as exc:
            raise BusError(
                f"cannot fetch {self._topics} from Kafka at {self._config.bootstrap_servers}: {exc}"
            ) from exc
        batch: list[Record] = []
        for tp, messages in data.items():
            if not messages:
                continue
            topic, partition = tp.topic, tp.partition
            batch.extend(
                [Record(topic, partition, m.offset, m.key, m.value, m.timestamp) for m in messages]
            )
            self._positions[tp] = messages[-1].offset + 1
            counter = self._consumed.get(topic)
            if counter is None:
                counter = self._consumed[topic] = BUS_CONSUMED.labels(topic)
            counter.inc(len(messages))
        now = time.monotonic()
        if now >= self._lag_due:
            self._lag_due = now + _LAG_INTERVAL_S
            await self._update_lag(consumer)
        return batch

    async def commit(self) -> None:
        """Commit the offsets after everything `get_batch` has returned so far."""
        consumer = self._started()
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in self._positions.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
            self._forget(offsets)
        except _REBALANCE_ERRORS as exc:
            self._forget(offsets)
            # The partitions moved to another member, which resumes from the last commit:
            # the records are delivered again (at-least-once), nothing is lost.
            log.warning(
                "Kafka commit lost to a rebalance; records will be redelivered",
                extra={"group": self._group_id, "error": str(exc)},
            )
        except KafkaError as exc:
            raise BusError(
                f"cannot commit offsets of group {self._group_id!r} to Kafka at "
                f"{self._config.bootstrap_servers}: {exc}"
            ) from exc

    def _forget(self, committed: dict[TopicPartition, int]) -> None:
        for tp, offset in committed.items():
            if self._positions.get(tp) == offset:  # not advanced by a get_batch meanwhile
                del self._positions[tp]

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise BusError("Kafka consumer is not started; call start() first")
        return self._consumer

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:  # no fetch answered for it yet
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            BUS_CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))
