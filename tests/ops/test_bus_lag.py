"""Consumer lag per partition and consumer group on /metrics, on both bus transports."""

from __future__ import annotations

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
async def test_lag_is_the_log_end_minus_the_committed_offset_per_group(bus: Bus) -> None:
    """Three groups on one 10-record partition: `done` processed and committed all 10,
    `slow` 4; `stuck` fetched all 10 and committed none (a detection stuck in a batch):
    its lag is 10, not the 0 the fetch position gave (issue 10)."""
    run = uuid.uuid4().hex[:8]
    topic = f"lag.{run}"
    await bus.ensure_topics([topic])
    producer = bus.producer()
    await producer.start()
    await producer.publish_many(topic, [(b"k", str(i).encode()) for i in range(10)])
    await producer.flush()
    await producer.stop()
    lags = {}
    for name, want, commit in (("done", 10, True), ("slow", 4, True), ("stuck", 10, False)):
        group = f"{name}-{run}"
        consumer = bus.consumer([topic], group, from_beginning=True)
        await consumer.start()
        got = 0
        for _ in range(40):
            got += len(await consumer.get_batch(want - got, 0.5))
            if got >= want:
                break
        assert got == want
        if commit:
            await consumer.commit()
        progress = await consumer.progress()
        assert progress.assigned and [p.partition for p in progress.partitions] == [0]
        lags[name] = (progress.partitions[0].lag, lag(topic, group))
        await consumer.stop()
    assert lags == {"done": (0, 0), "slow": (6, 6), "stuck": (10, 10)}
