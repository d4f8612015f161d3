"""The Kafka producer: buffered batches keyed by base asset, failures reported by `flush`."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
)
from aiokafka.partitioner import murmur2

from streams.bus.interface import BusConfig
from streams.bus.kafka_client import (
    DEFAULT_CONNECT_TIMEOUT_S,
    FAILURE_LOG_INTERVAL_S,
    PARTITION_CACHE_MAX,
    acks_setting,
    check_compression,
    connect_client,
)
from streams.errors import BusError
from streams.metrics import BUS_PRODUCE_ERRORS, BUS_PRODUCED

log = logging.getLogger(__name__)


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
        if len(cache) > PARTITION_CACHE_MAX:
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

    async def _wait_idle(self) -> None:
        if self._idle is not None and self._pending:
            await self._idle.wait()
