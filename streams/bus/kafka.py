"""The Kafka bus (aiokafka): topics on a real cluster, consumer groups, at-least-once commits.

Producers buffer (`linger_ms`, `max_batch_bytes`) and never wait per record; delivery
failures are counted in `hm_bus_produce_errors_total`, logged, and raised by the next
`flush()`. Consumers never auto-commit: `commit()` commits what `get_batch` returned.
Every connection attempt is bounded by `connect_timeout_s` and fails with a BusError
that names the bootstrap servers.

Topics are checked at start (`ensure_topics`: created when missing, grown when they have
fewer partitions than `[kafka] partitions`, else a BusError) and again while running
(`watch_topics`: every few seconds, and as soon as an unreachable broker answers again),
because a broker that restarts empty re-creates a topic on the first client's metadata
request with its own default partition count (tansu: 4; Kafka: `num.partitions`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from streams.bus.interface import BusConfig
from streams.bus.kafka_client import (
    DEFAULT_CONNECT_TIMEOUT_S,
    KAFKA_GROUP_TIMING,
    LOCAL_BROKER_GROUP_TIMING,
    TOPIC_CHECK_S,
    GroupTiming,
    connect_client,
)
from streams.bus.kafka_consumer import KafkaConsumer
from streams.bus.kafka_log import install_repeat_filter
from streams.bus.kafka_producer import KafkaProducer
from streams.errors import BusError
from streams.metrics import BUS_TOPIC_PROBLEMS

__all__ = [
    "LOCAL_BROKER_GROUP_TIMING",
    "GroupTiming",
    "KafkaBus",
    "KafkaConsumer",
    "KafkaProducer",
    "TopicPlan",
    "plan_topics",
]

log = logging.getLogger(__name__)
WATCH_PROBE_S = 1.0  # how often `watch_topics` looks at the topics


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """What a topic check does: topics to create, to grow (to `partitions`), and the ones
    with more partitions than configured (kept: Kafka cannot shrink a topic)."""

    partitions: int
    create: tuple[str, ...] = ()
    grow: Mapping[str, int] = field(default_factory=dict)  # topic -> partitions it has
    larger: Mapping[str, int] = field(default_factory=dict)


def plan_topics(wanted: Sequence[str], existing: Mapping[str, int], partitions: int) -> TopicPlan:
    """Compare the topics `wanted` with the `existing` ones (name -> partition count)."""
    names = list(dict.fromkeys(wanted))
    return TopicPlan(
        partitions,
        create=tuple(t for t in names if t not in existing),
        grow={t: existing[t] for t in names if t in existing and existing[t] < partitions},
        larger={t: existing[t] for t in names if t in existing and existing[t] > partitions},
    )


class KafkaBus:
    """The Kafka implementation of `Bus`."""

    def __init__(
        self,
        config: BusConfig,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        group_timing: GroupTiming = KAFKA_GROUP_TIMING,
    ) -> None:
        if not config.bootstrap_servers.strip():
            raise BusError("KafkaBus needs [kafka] bootstrap_servers (host:port)")
        self._config = config
        self._connect_timeout_s = connect_timeout_s
        self._group_timing = group_timing
        self._shape: dict[str, int | None] = {}  # partitions per topic after the last check
        self._clients: weakref.WeakSet[KafkaProducer | KafkaConsumer] = weakref.WeakSet()
        install_repeat_filter()

    @property
    def description(self) -> str:
        return f"Kafka at {self._config.bootstrap_servers}"

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics and grow short ones; BusError for what cannot be done."""
        problems = await self._check(topics)
        if problems:
            raise BusError(" ".join(problems.values()))

    async def watch_topics(self, topics: Sequence[str], every_s: float = TOPIC_CHECK_S) -> None:
        """Look at the topics every second (two metadata requests); when one is missing,
        its partition count changed, or the broker answers again after an outage (a
        broker restarted empty, or that re-created a topic with its own count), run the
        full check (create, grow) and make this bus's clients reconnect; otherwise the
        full check runs every `every_s`. Problems are logged when they change."""
        servers = self._config.bootstrap_servers
        wanted = list(dict.fromkeys(topics))
        admin: AIOKafkaAdminClient | None = None
        reachable, due = True, time.monotonic() + every_s
        reported: dict[str, str] = {}
        try:
            while True:
                await asyncio.sleep(WATCH_PROBE_S)
                try:
                    if admin is None:
                        admin = await self._admin("check topics")
                    async with asyncio.timeout(self._check_timeout_s):
                        counts = await self._counts(admin, wanted)
                        came_back, reachable = not reachable, True
                        changed = came_back or counts != {t: self._shape.get(t) for t in wanted}
                        if not changed and time.monotonic() < due:
                            continue
                        due = time.monotonic() + every_s
                        problems = await self._reconcile(admin, wanted, counts)
                except (BusError, KafkaError, TimeoutError) as exc:
                    if admin is not None:
                        await admin.close()
                        admin = None
                    if reachable:
                        log.warning(
                            "Kafka at %s does not answer the topic check: %s",
                            servers,
                            exc if isinstance(exc, BusError) else type(exc).__name__,
                            extra={"bootstrap": servers},
                        )
                    reachable = False
                    continue
                if changed:
                    self._reconnect_clients(
                        "answers again" if came_back else "changed topics", counts
                    )
                reported = self._report(problems, reported)
        finally:
            if admin is not None:
                await admin.close()

    def _report(self, problems: dict[str, str], reported: dict[str, str]) -> dict[str, str]:
        for topic, problem in problems.items():
            if reported.get(topic) != problem:
                log.error("%s", problem, extra={"topic": topic})
        for topic in reported.keys() - problems.keys():
            log.info("topic %s is as configured again", topic, extra={"topic": topic})
        for topic in self._shape:
            BUS_TOPIC_PROBLEMS.labels(topic).set(1 if topic in problems else 0)
        return problems

    def _reconnect_clients(self, why: str, counts: Mapping[str, int | None]) -> None:
        """New connections and fresh metadata for every producer and consumer of this bus."""
        clients = list(self._clients)
        log.warning(
            "Kafka at %s %s: topics checked, %d clients reconnect",
            self._config.bootstrap_servers,
            why,
            len(clients),
            extra={"partitions_found": dict(counts)},
        )
        for client in clients:
            client.reconnect()

    async def _admin(self, what: str) -> AIOKafkaAdminClient:
        config = self._config
        admin: AIOKafkaAdminClient = await connect_client(
            config.bootstrap_servers,
            what,
            self._connect_timeout_s,
            lambda: AIOKafkaAdminClient(
                bootstrap_servers=config.bootstrap_servers,
                client_id=config.client_id,
                request_timeout_ms=config.request_timeout_ms,
            ),
        )
        return admin

    @property
    def _check_timeout_s(self) -> float:
        return max(self._connect_timeout_s, 5.0) * 2

    async def _check(self, topics: Sequence[str]) -> dict[str, str]:
        """One full check with a fresh admin client: topic -> problem left (none: fine)."""
        config = self._config
        admin = await self._admin("check topics")
        wanted = list(dict.fromkeys(topics))
        try:
            async with asyncio.timeout(self._check_timeout_s):
                problems = await self._reconcile(admin, wanted, await self._counts(admin, wanted))
        except (KafkaError, TimeoutError) as exc:
            raise BusError(
                f"cannot check topics {wanted} on Kafka at {config.bootstrap_servers}: "
                f"{type(exc).__name__} {exc}"
            ) from exc
        finally:
            await admin.close()
        for topic in wanted:
            BUS_TOPIC_PROBLEMS.labels(topic).set(1 if topic in problems else 0)
        return problems

    @staticmethod
    async def _counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int | None]:
        """Partitions per topic (None: missing). Listed first: describing a missing topic
        makes an auto-creating broker create it, with its own partition count."""
        existing = set(await admin.list_topics())
        counts: dict[str, int | None] = dict.fromkeys(topics)
        present = [t for t in topics if t in existing]
        if present:
            for d in await admin.describe_topics(present):
                if d["error_code"] == 0 and d["topic"] in counts:
                    counts[d["topic"]] = len(d["partitions"])
        return counts

    async def _reconcile(
        self, admin: AIOKafkaAdminClient, topics: list[str], counts: Mapping[str, int | None]
    ) -> dict[str, str]:
        """Create the missing topics, grow the short ones; remember the shape left."""
        found = {t: n for t, n in counts.items() if n is not None}
        plan = plan_topics(topics, found, self._config.partitions)
        problems: dict[str, str] = {}
        if plan.create:
            problems.update(await self._create(admin, list(plan.create)))
        if plan.grow:
            problems.update(await self._grow(admin, plan.grow))
        for topic, count in plan.larger.items():
            log.info(
                "topic %s has %d partitions, more than [kafka] partitions = %d: kept",
                topic,
                count,
                plan.partitions,
                extra={"topic": topic, "partitions": count},
            )
        for topic in topics:
            if topic in problems:
                self._shape[topic] = counts.get(topic)
            else:
                self._shape[topic] = max(found.get(topic, 0), self._config.partitions)
        return problems

    async def _create(self, admin: AIOKafkaAdminClient, missing: list[str]) -> dict[str, str]:
        config, servers = self._config, self._config.bootstrap_servers
        response = await admin.create_topics(
            [NewTopic(t, config.partitions, config.replication_factor) for t in missing]
        )
        problems = {}
        for topic, code, *message in response.topic_errors:
            error = for_code(code)
            if code == 0 or error is TopicAlreadyExistsError:  # created, or lost a race
                continue
            detail = message[0] if message and message[0] else error.__name__
            problems[topic] = (
                f"Kafka at {servers} refused to create topic {topic!r} with "
                f"{config.partitions} partitions x {config.replication_factor} "
                f"replicas: {detail}. Check [kafka] partitions and replication_factor "
                "(at most the number of brokers) and the client's ACLs."
            )
        created = [t for t in missing if t not in problems]
        if created:
            log.info(
                "created Kafka topics", extra={"topics": created, "partitions": config.partitions}
            )
        return problems

    async def _grow(self, admin: AIOKafkaAdminClient, short: Mapping[str, int]) -> dict[str, str]:
        """Add partitions to the topics in `short` (topic -> partitions it has)."""
        config, servers = self._config, self._config.bootstrap_servers
        problems = {}
        for topic, count in short.items():
            try:
                response = await admin.create_partitions({topic: NewPartitions(config.partitions)})
                errors = [
                    (code, message) for _, code, message in response.topic_errors if code != 0
                ]
                if errors:
                    raise for_code(errors[0][0])(errors[0][1] or "")
            except KafkaError as exc:
                problems[topic] = (
                    f"topic {topic!r} on Kafka at {servers} has {count} partitions, "
                    f"[kafka] partitions = {config.partitions}, and the broker did not add "
                    f"them ({type(exc).__name__}: it may not support CreatePartitions). "
                    f"Records go to the {count} partitions there are; to fix, recreate the "
                    f"topic with {config.partitions} partitions (kafka-topics.sh --alter "
                    "--partitions) or set [kafka] partitions to match."
                )
                continue
            log.warning(
                "topic %s had %d partitions (re-created by the broker?): grown to %d",
                topic,
                count,
                config.partitions,
                extra={"topic": topic, "partitions": config.partitions, "had": count},
            )
        return problems

    def producer(self) -> KafkaProducer:
        producer = KafkaProducer(self._config, connect_timeout_s=self._connect_timeout_s)
        self._clients.add(producer)
        return producer

    def consumer(
        self, topics: Sequence[str], group_id: str, *, from_beginning: bool = False
    ) -> KafkaConsumer:
        consumer = KafkaConsumer(
            self._config,
            topics,
            group_id,
            from_beginning=from_beginning,
            connect_timeout_s=self._connect_timeout_s,
            group_timing=self._group_timing,
        )
        self._clients.add(consumer)
        return consumer
