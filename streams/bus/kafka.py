"""The Kafka bus (aiokafka): topics on a real cluster, consumer groups, at-least-once commits.

Producers buffer (`linger_ms`, `max_batch_bytes`) and never wait per record; delivery
failures are counted in `hm_bus_produce_errors_total`, logged, and raised by the next
`flush()`. Consumers never auto-commit: `commit()` commits what `get_batch` returned.
Every connection attempt is bounded by `connect_timeout_s` and fails with a BusError
that names the bootstrap servers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
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
    GroupTiming,
    connect_client,
)
from streams.bus.kafka_consumer import KafkaConsumer
from streams.bus.kafka_producer import KafkaProducer
from streams.errors import BusError

__all__ = ["LOCAL_BROKER_GROUP_TIMING", "GroupTiming", "KafkaBus", "KafkaConsumer", "KafkaProducer"]

log = logging.getLogger(__name__)


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

    @property
    def description(self) -> str:
        return f"Kafka at {self._config.bootstrap_servers}"

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet; ones that do (or appear meanwhile) are kept."""
        config = self._config
        admin = await connect_client(
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
