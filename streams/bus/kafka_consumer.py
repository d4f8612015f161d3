"""The Kafka consumer: `getmany` batches, explicit commits, lag per partition.

A commit is bounded in time and never raises for a broker that is away or has lost the
topic: aiokafka retries a retriable commit error (UnknownTopicOrPartition after a broker
restarted empty) forever, which stalled detection silently (issue 10). The offsets stay
due and the next commit tries again; the group's offsets on a broker that lost them are
gone, and aiokafka resumes from the reset policy (`BusConfig.offset_reset`) on rejoin or
on an out-of-range fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import (
    IllegalStateError,
    KafkaError,
)
from prometheus_client import Counter

from streams.bus.interface import BusConfig, ConsumerProgress, PartitionProgress, Record
from streams.bus.kafka_client import (
    COMMIT_TIMEOUT_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    KAFKA_GROUP_TIMING,
    PROGRESS_TIMEOUT_S,
    REBALANCE_ERRORS,
    GroupTiming,
    connect_client,
    drop_connections,
)
from streams.errors import BusError
from streams.metrics import BUS_CONSUMED, BUS_CONSUMER_LAG

log = logging.getLogger(__name__)


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Signals the first assignment; forgets positions of partitions a rebalance takes."""

    def __init__(
        self,
        positions: dict[TopicPartition, int],
        starts: dict[TopicPartition, int],
        group_id: str,
    ) -> None:
        self._positions = positions
        self._starts = starts
        self._group_id = group_id
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        for tp in revoked:
            self._positions.pop(tp, None)
            self._starts.pop(tp, None)
            # The new owner reports this partition's lag; a stale value here would count twice.
            with contextlib.suppress(KeyError):
                BUS_CONSUMER_LAG.remove(tp.topic, str(tp.partition), self._group_id)

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
        group_timing: GroupTiming = KAFKA_GROUP_TIMING,
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
        self._listener: _Rebalances | None = None
        self._reported: set[TopicPartition] = set()  # partitions with a lag gauge of ours
        self._starts: dict[TopicPartition, int] = {}  # first offset fetched per partition

    async def start(self) -> None:
        """Connect, join the group, and return once Kafka has assigned this member's partitions."""
        if self._consumer is not None:
            return
        config, timing = self._config, self._timing
        # Subscribed only once connected: the connect timeout bounds the connection, and
        # `join_timeout_s` the group join (which can take a while on a busy cluster).
        consumer = await connect_client(
            config.bootstrap_servers,
            "start a consumer",
            self._connect_timeout_s,
            lambda: AIOKafkaConsumer(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                group_id=self._group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if self._from_beginning else config.offset_reset,
                request_timeout_ms=config.request_timeout_ms,
                metadata_max_age_ms=config.metadata_max_age_ms,
                session_timeout_ms=timing.session_timeout_ms,
                heartbeat_interval_ms=timing.heartbeat_interval_ms,
                rebalance_timeout_ms=timing.rebalance_timeout_ms,
                max_poll_records=config.fetch_max_records,
                fetch_max_wait_ms=config.fetch_max_wait_ms,
            ),
        )
        listener = _Rebalances(self._positions, self._starts, self._group_id)
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
        self._listener = listener

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
        self._listener = None
        for tp in self._reported:
            with contextlib.suppress(KeyError):
                BUS_CONSUMER_LAG.remove(tp.topic, str(tp.partition), self._group_id)
        self._reported.clear()
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
            if tp not in self._starts:
                self._starts[tp] = messages[0].offset
            counter = self._consumed.get(topic)
            if counter is None:
                counter = self._consumed[topic] = BUS_CONSUMED.labels(topic)
            counter.inc(len(messages))
        return batch

    async def commit(self) -> None:
        """Commit the offsets after everything `get_batch` has returned so far.

        Bounded by `COMMIT_TIMEOUT_S` (or the request timeout, if shorter): a commit the
        broker cannot take now (away, or the topic lost) is logged and tried again by the
        next call; detection goes on meanwhile (at-least-once: a restart re-reads them).
        """
        consumer = self._started()
        assigned = consumer.assignment()
        cluster = consumer._client.cluster
        for tp in list(self._positions):
            known = cluster.partitions_for_topic(tp.topic)
            if tp not in assigned or (known is not None and tp.partition not in known):
                del self._positions[tp]  # revoked, or gone with the topic: not ours to commit
        offsets = dict(self._positions)
        if not offsets:
            return
        timeout_s = min(COMMIT_TIMEOUT_S, self._config.request_timeout_ms / 1000)
        try:
            await asyncio.wait_for(consumer.commit(offsets), timeout_s)
            self._forget(offsets)
        except TimeoutError:
            # Most likely the broker lost the topic (restarted empty) and re-created it with
            # fewer partitions: fresh metadata drops the partitions gone, and the changed
            # subscription makes aiokafka rejoin the group.
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(consumer._client.force_metadata_update(), timeout_s)
            log.warning(
                "Kafka commit of group %s not done within %g s (broker away, or the topic or "
                "partition unknown to it); retried with the next batch",
                self._group_id,
                timeout_s,
                extra={"group": self._group_id, "partitions": len(offsets)},
            )
        except REBALANCE_ERRORS as exc:
            self._forget(offsets)
            # The partitions moved to another member, which resumes from the last commit:
            # the records are delivered again (at-least-once), nothing is lost.
            log.warning(
                "Kafka commit lost to a rebalance; records will be redelivered",
                extra={"group": self._group_id, "error": str(exc)},
            )
        except KafkaError as exc:
            log.warning(
                "Kafka commit of group %s failed: %s; retried with the next batch",
                self._group_id,
                type(exc).__name__,
                extra={"group": self._group_id, "error": str(exc)},
            )

    def reconnect(self) -> None:
        """New connections and fresh metadata (the broker restarted, or its topics changed);
        a changed partition count makes aiokafka rejoin the group."""
        if self._consumer is None:
            return
        drop_connections(self._consumer._client)
        self._consumer._client.force_metadata_update()

    def _forget(self, committed: dict[TopicPartition, int]) -> None:
        for tp, offset in committed.items():
            if self._positions.get(tp) == offset:  # not advanced by a get_batch meanwhile
                del self._positions[tp]

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise BusError("Kafka consumer is not started; call start() first")
        return self._consumer

    async def progress(self) -> ConsumerProgress:
        """Per owned partition: the log end (ListOffsets, or the last fetch's high
        watermark if larger: tansu answers ListOffsets one batch short), the committed
        offset and the position. Sets the lag gauge; bounded by `PROGRESS_TIMEOUT_S`."""
        consumer = self._consumer
        listener = self._listener
        if consumer is None or listener is None:
            return ConsumerProgress(self._group_id, assigned=False, error="not started")
        assigned = set(consumer.assignment())
        if not listener.assigned.is_set() or not assigned:
            self._report({})
            return ConsumerProgress(self._group_id, assigned=listener.assigned.is_set())
        try:
            async with asyncio.timeout(PROGRESS_TIMEOUT_S):
                partitions = await self._ask(consumer, sorted(assigned))
        except (TimeoutError, KafkaError) as exc:
            reason = type(exc).__name__ if isinstance(exc, KafkaError) else "timeout"
            return ConsumerProgress(
                self._group_id, assigned=True, error=f"cannot ask Kafka for offsets: {reason}"
            )
        self._report({(p.topic, p.partition): p.lag for p in partitions})
        return ConsumerProgress(self._group_id, assigned=True, partitions=tuple(partitions))

    async def _ask(
        self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]
    ) -> list[PartitionProgress]:
        ends = await consumer.end_offsets(assigned)
        out = []
        for tp in assigned:
            end = ends.get(tp)
            highwater = consumer.highwater(tp)
            if highwater is not None:
                end = highwater if end is None else max(end, highwater)
            try:
                committed = await consumer.committed(tp)
                position: int | None = await consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            start = self._starts.get(tp, position)
            out.append(PartitionProgress(tp.topic, tp.partition, end, committed, position, start))
        return out

    def _report(self, lags: dict[tuple[str, int], int | None]) -> None:
        """Set the lag gauge of the partitions owned; drop the ones this member lost."""
        owned = {TopicPartition(t, p) for (t, p), lag in lags.items() if lag is not None}
        for tp in self._reported - owned:
            with contextlib.suppress(KeyError):
                BUS_CONSUMER_LAG.remove(tp.topic, str(tp.partition), self._group_id)
        for tp in owned:
            lag = lags[tp.topic, tp.partition]
            assert lag is not None
            BUS_CONSUMER_LAG.labels(tp.topic, str(tp.partition), self._group_id).set(lag)
        self._reported = owned
