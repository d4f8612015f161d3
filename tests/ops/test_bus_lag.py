"""Consumer lag per partition and consumer group on /metrics, on both bus transports."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from streams.bus.interface import Bus, BusConfig
from streams.bus.kafka import LOCAL_BROKER_GROUP_TIMING, KafkaBus
from streams.bus.memory import MemoryBus


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def bus(request: pytest.FixtureRequest) -> Bus:
    if request.param == "memory":
        return MemoryBus(BusConfig(partitions=1, linger_ms=1))
    bootstrap: str = request.getfixturevalue("kafka_broker")
    config = BusConfig(bootstrap_servers=bootstrap, partitions=1, linger_ms=1)
    return KafkaBus(config, group_timing=LOCAL_BROKER_GROUP_TIMING)


def lag(topic: str, group: str) -> float | None:
    labels = {"topic": topic, "partition": "0", "group": group}
    return REGISTRY.get_sample_value("hm_bus_consumer_lag_records", labels)


@pytest.mark.timeout(60)
async def test_lag_is_reported_per_group(bus: Bus) -> None:
    run = uuid.uuid4().hex[:8]
    topic, fast, slow = f"lag.{run}", f"fast-{run}", f"slow-{run}"
    await bus.ensure_topics([topic])
    producer = bus.producer()
    await producer.start()
    await producer.publish_many(topic, [(b"k", str(i).encode()) for i in range(10)])
    await producer.flush()
    await producer.stop()
    consumed = {}
    for group, want in ((fast, 10), (slow, 4)):
        consumer = bus.consumer([topic], group, from_beginning=True)
        await consumer.start()
        got = 0
        for _ in range(40):
            got += len(await consumer.get_batch(want - got, 0.5))
            if got >= want:
                break
        # Lag is sampled at most once a second, on a get_batch: one more after a second.
        await asyncio.sleep(1.1)
        got += len(await consumer.get_batch(1, 0.5))
        consumed[group] = got
        await consumer.stop()
    assert consumed[fast] == 10 and consumed[slow] < 10
    assert lag(topic, fast) == 0
    assert lag(topic, slow) == 10 - consumed[slow]
