"""What the Kafka producer, consumer and admin share: connecting with a deadline, group
timing, and validation of the producer settings."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.codec import has_lz4, has_snappy, has_zstd
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
)

from streams.errors import BusError

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 5.0
COMMIT_TIMEOUT_S = 5.0  # a commit the broker cannot take in this time is retried later
METADATA_TIMEOUT_S = 5.0  # a producer waiting for a topic's partitions
PROGRESS_TIMEOUT_S = 3.0  # asking the broker for offsets (lag, health)
RECONNECT_AFTER_S = 5.0  # failing this long with nothing delivered: new connections
TOPIC_CHECK_S = 10.0  # how often the running pipeline checks its topics again
FAILURE_LOG_INTERVAL_S = 5.0
PARTITION_CACHE_MAX = 65_536
REBALANCE_ERRORS = (CommitFailedError, IllegalStateError, RebalanceInProgressError)


@dataclass(frozen=True, slots=True)
class GroupTiming:
    """Consumer-group timeouts. The defaults are Kafka's and suit a real cluster, which
    rejects session timeouts under 6 s; `LOCAL_BROKER_GROUP_TIMING` suits tansu."""

    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int | None = None  # None: the session timeout
    join_timeout_s: float = 60.0  # how long `Consumer.start` waits for its partitions


#: Kafka's own defaults, for a real cluster.
KAFKA_GROUP_TIMING = GroupTiming()

#: For the single local broker of tests and `bench`: tansu holds a first join for about
#: half the session timeout and, as it numbers generations from 0, aiokafka never sends
#: it a LeaveGroup, so the next member of the group waits for the session to expire.
LOCAL_BROKER_GROUP_TIMING = GroupTiming(
    session_timeout_ms=1_000, heartbeat_interval_ms=100, rebalance_timeout_ms=1_000
)


def unreachable(servers: str, what: str, timeout_s: float, exc: BaseException | None) -> BusError:
    cause = f": {exc}" if exc is not None else ""
    return BusError(
        f"cannot reach Kafka at {servers} to {what} within {timeout_s:g} s{cause}. "
        "Check that the broker is running, that [kafka] bootstrap_servers lists its "
        "host:port (comma-separated), and that this host can reach it (firewall, DNS, "
        "the broker's advertised listeners)."
    )


async def connect_client(servers: str, what: str, timeout_s: float, make: Callable[[], Any]) -> Any:
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
                raise unreachable(servers, what, timeout_s, exc) from exc
        except KafkaError as exc:
            await close()
            raise BusError(f"Kafka at {servers} refused to {what}: {exc}") from exc
        except asyncio.CancelledError:
            await close()
            raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def drop_connections(client: Any) -> int:
    """Close every broker connection of an aiokafka client; it reconnects on next use.

    For a broker that came back and keeps failing requests on the old connections (tansu
    0.6 answers every produce with error -1 on a connection that wrote to a topic before
    the topic was re-created; a new connection is served)."""
    conns = list(getattr(client, "_conns", {}).values())
    for conn in conns:
        conn.close()
    return len(conns)


def acks_setting(value: str) -> int | str:
    if value == "all":
        return "all"
    if value in ("0", "1"):
        return int(value)
    raise BusError(f'bus acks must be "0", "1" or "all", got {value!r}')


def check_compression(codec: str | None) -> None:
    if codec is None or codec == "gzip":
        return
    if codec not in ("lz4", "snappy", "zstd"):
        raise BusError(
            f'bus compression must be none, "gzip", "lz4", "snappy" or "zstd": {codec!r}'
        )
    if not (has_lz4() and has_snappy() and has_zstd()):  # all three come from cramjam
        raise BusError(f"compression {codec!r} needs cramjam: pip install 'aiokafka[{codec}]'")
