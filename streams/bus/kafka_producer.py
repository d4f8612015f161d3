"""The Kafka producer: buffered batches keyed by base asset, failures reported by `flush`.

Records are appended to one open batch per (topic, partition) that stays open across
`publish_many` calls until it is full or `linger_ms` after its first record, then it is
closed and handed to aiokafka (`send_batch`), which sends a closed batch at once. A feed
publishes small calls (a few dozen ticks every few ms): a batch per partition per call
made tansu's log (and every later fetch) many times longer than needed, and cost
throughput in request encoding. Hand-overs happen in order under one lock, so a key's
records stay in publish order; a full batch makes the publisher wait for aiokafka
(backpressure).

A broker that goes away or comes back with another partition count never makes
`publish_many` raise (issue 10: ingest crashed with aiokafka's `Unrecognized partition`
after a broker restarted empty and auto-created the topic with 4 partitions, not 6): an
open batch for a partition that no longer exists is re-routed by key over the partitions
there are now, and a batch aiokafka cannot take is counted as failed, logged once per
interval, and reported by the next `flush()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
)
from aiokafka.partitioner import murmur2

from streams.bus.interface import BusConfig, ProducerStatus
from streams.bus.kafka_client import (
    DEFAULT_CONNECT_TIMEOUT_S,
    FAILURE_LOG_INTERVAL_S,
    METADATA_TIMEOUT_S,
    PARTITION_CACHE_MAX,
    RECONNECT_AFTER_S,
    acks_setting,
    check_compression,
    connect_client,
    drop_connections,
)
from streams.errors import BusError
from streams.metrics import BUS_PRODUCE_ERRORS, BUS_PRODUCED

log = logging.getLogger(__name__)

PARTITIONS_TTL_S = 1.0  # how long a topic's partition list is reused before asking again


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
        self._delivered_total = 0
        self._failed_total = 0
        self._last_delivery: float | None = None
        self._last_failure: float | None = None
        self._failing_since: float | None = None  # first failure after the last delivery
        self._reconnected_at = 0.0
        self._unlogged_failures = 0
        self._failure_log_due = 0.0
        self._partitions: dict[int, dict[bytes, int]] = {}
        self._topic_partitions: dict[str, tuple[float, list[int]]] = {}  # topic -> (due, list)
        self._open: dict[tuple[str, int], _OpenBatch] = {}  # (topic, partition) -> batch
        self._ready: deque[tuple[str, int, _OpenBatch]] = deque()  # closed, to hand over
        self._handover = asyncio.Lock()
        self._linger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        config = self._config
        acks = acks_setting(config.acks)
        check_compression(config.compression)
        if config.enable_idempotence and acks != "all":
            raise BusError('enable_idempotence needs acks = "all" (and a broker that has it)')
        self._producer = await connect_client(
            config.bootstrap_servers,
            "start a producer",
            self._connect_timeout_s,
            lambda: AIOKafkaProducer(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                linger_ms=config.linger_ms,
                max_batch_size=config.max_batch_bytes,
                request_timeout_ms=config.request_timeout_ms,
                metadata_max_age_ms=config.metadata_max_age_ms,
                acks=acks,
                compression_type=config.compression,
                enable_idempotence=config.enable_idempotence,
            ),
        )
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self) -> None:
        """Deliver what is buffered and disconnect; failures are logged, not raised."""
        if self._producer is None:
            return
        self._close_open()
        try:
            await self._hand_over()
        except BusError as exc:
            log.error("Kafka producer stopping: %s", exc)
        producer, self._producer = self._producer, None
        assert producer is not None
        if self._linger is not None:
            self._linger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._linger
            self._linger = None
        await producer.stop()
        await self._wait_idle()
        if self._failed:
            log.error(
                "Kafka producer stopped with undelivered records",
                extra={"failed_records": self._failed, "error": str(self._last_error)},
            )

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """One record, through the same open batches as `publish_many` (keeps key order)."""
        await self.publish_many(topic, [(key, value)])

    async def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Append to the open batch of each record's partition (the Java client's murmur2,
        like `send`); full batches are handed over now, the others after `linger_ms`."""
        self._started()
        if not items:
            return
        partitions = await self._partitions_of(topic, len(items))
        if not partitions:
            return  # no metadata: counted and logged, the records are lost
        self._append(topic, partitions, items)
        if self._ready:
            await self._hand_over()  # full batches: wait for aiokafka to take them
        await self._schedule()

    def _append(
        self, topic: str, partitions: list[int], items: Sequence[tuple[bytes | None, bytes]]
    ) -> None:
        """Append each record to the open batch of its partition (by key, murmur2)."""
        count = len(partitions)
        cache = self._partitions.setdefault(count, {})
        if len(cache) > PARTITION_CACHE_MAX:
            cache.clear()
        unkeyed = random.choice(partitions)  # one partition per call for key-less records
        open_batches = self._open
        for key, value in items:
            if key is None:
                partition = unkeyed
            else:
                partition = cache.get(key, -1)
                if partition < 0:
                    partition = partitions[(murmur2(key) & 0x7FFFFFFF) % count]
                    cache[key] = partition
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[topic, partition] = self._new_batch()
            if batch.builder.append(key=key, value=value, timestamp=None) is None:  # full
                self._append_to_fresh(topic, partition, key, value)
            else:
                batch.items.append((key, value))

    async def _schedule(self) -> None:
        """Hand the open batches over now (no linger) or after `linger_ms`."""
        open_batches = self._open
        if not open_batches:
            return
        if self._config.linger_ms <= 0:
            self._close_open()
            await self._hand_over()
        elif self._linger is None:
            self._linger = asyncio.create_task(self._hand_over_after_linger())

    def _new_batch(self) -> _OpenBatch:
        producer = self._producer
        assert producer is not None
        return _OpenBatch(producer.create_batch())

    def _append_to_fresh(self, topic: str, partition: int, key: bytes | None, value: bytes) -> None:
        """The open batch of `partition` is full: close it and start another with the record."""
        full = self._open.pop((topic, partition))
        if full.items:
            self._ready.append((topic, partition, full))
        batch = self._open[topic, partition] = self._new_batch()
        if batch.builder.append(key=key, value=value, timestamp=None) is None:
            BUS_PRODUCE_ERRORS.labels(topic).inc()
            raise BusError(
                f"a record of {len(value)} bytes for {topic!r} does not fit in a "
                f"batch of max_batch_bytes={self._config.max_batch_bytes}"
            )
        batch.items.append((key, value))

    async def _partitions_of(self, topic: str, records: int) -> list[int]:
        """The topic's partitions, asked of aiokafka's metadata at most once a second;
        empty (the records counted as failed, logged) when the broker cannot say."""
        now = time.monotonic()
        cached = self._topic_partitions.get(topic)
        if cached is not None and now < cached[0]:
            return cached[1]
        producer = self._started()
        timeout_s = min(METADATA_TIMEOUT_S, self._config.request_timeout_ms / 1000)
        try:
            partitions = sorted(await asyncio.wait_for(producer.partitions_for(topic), timeout_s))
        except (KafkaError, TimeoutError) as exc:
            error = exc if isinstance(exc, KafkaError) else KafkaTimeoutError(str(exc))
            self._fail(topic, records, error)
            log.warning(
                "no metadata for topic %s from Kafka within %g s: %s; records dropped",
                topic,
                timeout_s,
                type(error).__name__,
                extra={"topic": topic, "records": records},
            )
            return []
        self._topic_partitions[topic] = (now + PARTITIONS_TTL_S, partitions)
        return partitions

    def _fail(self, topic: str, records: int, error: BaseException) -> None:
        """Count `records` as not delivered (reported by the next `flush`)."""
        BUS_PRODUCE_ERRORS.labels(topic).inc(records)
        self._failed += records
        self._failed_total += records
        self._last_error = error
        self._last_failure = time.monotonic()

    def _close_open(self) -> None:
        """Move every open batch to the hand-over queue, in partition order of opening."""
        for (topic, partition), batch in self._open.items():
            if batch.items:
                self._ready.append((topic, partition, batch))
        self._open.clear()

    async def _hand_over_after_linger(self) -> None:
        try:
            await asyncio.sleep(self._config.linger_ms / 1000)
        finally:
            self._linger = None
        self._close_open()
        try:
            await self._hand_over()
        except BusError as exc:  # counted already; `flush` reports the records as failed
            log.error("%s", exc)

    async def _hand_over(self) -> None:
        """Give the closed batches to aiokafka, oldest first (waits while it is busy).

        A batch for a partition the topic no longer has is re-routed; one aiokafka
        refuses is counted as failed (never raised: the broker may come back)."""
        rerouted: list[tuple[str, list[tuple[bytes | None, bytes]]]] = []
        async with self._handover:
            ready = self._ready
            while ready:
                topic, partition, batch = ready[0]
                producer = self._started()
                known = producer.client.cluster.partitions_for_topic(topic)
                if known is not None and partition not in known:
                    ready.popleft()
                    rerouted.append((topic, batch.items))
                    continue
                batch.builder.close()  # a closed batch is sent without lingering again
                try:
                    future = await producer.send_batch(batch.builder, topic, partition=partition)
                except AssertionError:  # aiokafka: "Unrecognized partition" (metadata moved)
                    ready.popleft()
                    rerouted.append((topic, batch.items))
                    continue
                except KafkaError as exc:
                    ready.popleft()
                    self._fail(topic, len(batch.items), exc)
                    log.warning(
                        "Kafka producer cannot take a batch for %s: %s; records dropped",
                        topic,
                        type(exc).__name__,
                        extra={"topic": topic, "records": len(batch.items), "error": str(exc)},
                    )
                    continue
                ready.popleft()
                self._track(future, topic, len(batch.items))
        for topic, items in rerouted:
            await self._reroute(topic, items)

    async def _reroute(self, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
        """Records of a partition that is gone, published again over the partitions now."""
        self._topic_partitions.pop(topic, None)
        partitions = await self._partitions_of(topic, len(items))
        if not partitions:
            return
        log.warning(
            "topic %s now has %d partitions: %d records re-routed by key",
            topic,
            len(partitions),
            len(items),
            extra={"topic": topic, "partitions": len(partitions), "records": len(items)},
        )
        self._append(topic, partitions, items)
        await self._schedule()

    async def flush(self) -> None:
        """Wait until every buffered record is delivered; BusError if any delivery failed."""
        producer = self._started()
        self._close_open()
        await self._hand_over()
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

    def status(self) -> ProducerStatus:
        return ProducerStatus(
            delivered=self._delivered_total,
            failed=self._failed_total,
            pending=self._pending,
            last_delivery=self._last_delivery,
            last_failure=self._last_failure,
            last_error=str(self._last_error or ""),
        )

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
            self._delivered_total += count
            self._last_delivery = time.monotonic()
            self._failing_since = None
            return
        self._fail(topic, count, error)
        self._maybe_reconnect()
        self._unlogged_failures += count
        now = time.monotonic()
        if now >= self._failure_log_due:  # a broker outage fails many batches at once
            self._failure_log_due = now + FAILURE_LOG_INTERVAL_S
            log.error(
                "Kafka delivery failed",
                extra={
                    "topic": topic,
                    "failed_records": self._unlogged_failures,
                    "error": str(error),
                },
            )
            self._unlogged_failures = 0

    def reconnect(self) -> None:
        """New connections and fresh metadata (the broker restarted, or its topics changed)."""
        if self._producer is None:
            return
        self._topic_partitions.clear()
        drop_connections(self._producer.client)
        self._producer.client.force_metadata_update()

    def _maybe_reconnect(self) -> None:
        """Deliveries failing for `RECONNECT_AFTER_S` with none delivered: new connections
        (once per that interval), in case the broker came back and the old ones are bad."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
            return
        if (
            now - self._failing_since < RECONNECT_AFTER_S
            or now - self._reconnected_at < RECONNECT_AFTER_S
        ):
            return
        if self._producer is None:
            return
        self._reconnected_at = now
        closed = drop_connections(self._producer.client)
        log.warning(
            "Kafka deliveries failing for %.0f s: %d connections closed, reconnecting",
            now - self._failing_since,
            closed,
            extra={"error": str(self._last_error)},
        )

    async def _wait_idle(self) -> None:
        if self._idle is not None and self._pending:
            await self._idle.wait()


class _OpenBatch:
    """An aiokafka batch still taking records, and the records (to re-route them)."""

    __slots__ = ("builder", "items")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.items: list[tuple[bytes | None, bytes]] = []
