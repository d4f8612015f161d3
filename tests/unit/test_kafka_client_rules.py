"""Pure parts of the Kafka bus: the topic plan, and the client log's rate limit."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY

from streams.bus.kafka import plan_topics
from streams.bus.kafka_log import RepeatFilter, cause_of


def test_plan_creates_missing_grows_short_and_keeps_larger_topics() -> None:
    plan = plan_topics(
        ["hm.ticks", "hm.alerts", "other", "hm.ticks"], {"hm.ticks": 4, "other": 9}, 6
    )
    assert plan.create == ("hm.alerts",)
    assert dict(plan.grow) == {"hm.ticks": 4}
    assert dict(plan.larger) == {"other": 9}


def test_plan_of_topics_as_configured_does_nothing() -> None:
    plan = plan_topics(["a", "b"], {"a": 6, "b": 6}, 6)
    assert (plan.create, dict(plan.grow), dict(plan.larger)) == ((), {}, {})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, name: str = "aiokafka.consumer.group_coordinator"
) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_one_line_per_cause_per_interval_with_the_count_held_back() -> None:
    clock = Clock()
    limit = RepeatFilter(10.0, clock)
    commit = "OffsetCommit failed for group %s on partition %s with offset %s: %s"
    passed = []
    for i in range(50):  # 50 retries in 5 s (aiokafka retries every 100 ms)
        clock.now = i * 0.1
        passed.append(limit.filter(record(commit, "g", i % 3, 104, "UnknownTopicOrPartitionError")))
    assert passed.count(True) == 1 and passed[0]
    other = record(
        "Unable connect to node with id %s: %s", 111, ConnectionRefusedError(111), name="aiokafka"
    )
    assert limit.filter(other)  # another cause has its own budget
    clock.now = 10.5
    late = record(commit, "g", 0, 104, "UnknownTopicOrPartitionError")
    assert limit.filter(late) and late.repeated == 49  # type: ignore[attr-defined]


def test_every_line_is_counted_by_component_and_cause() -> None:
    labels = {"component": "fetcher", "cause": "KafkaConnectionError"}
    before = REGISTRY.get_sample_value("hm_bus_client_errors_total", labels) or 0.0
    limit = RepeatFilter(10.0, Clock())
    for _ in range(7):
        limit.filter(
            record(
                "Failed fetch messages from %s: %s",
                111,
                "KafkaConnectionError",
                name="aiokafka.consumer.fetcher",
            )
        )
    assert REGISTRY.get_sample_value("hm_bus_client_errors_total", labels) == before + 7


def test_the_cause_is_the_error_class_named_in_the_line() -> None:
    assert cause_of(record("x %s", ConnectionRefusedError(111))) == "ConnectionRefusedError"
    assert (
        cause_of(record("x %s: %s", "g", "UnknownTopicOrPartitionError"))
        == "UnknownTopicOrPartitionError"
    )
    assert cause_of(record("Marking the coordinator dead (node %s)", 111)) == "other"


def test_info_lines_pass_untouched() -> None:
    limit = RepeatFilter(10.0, Clock())
    info = logging.LogRecord("aiokafka", logging.INFO, __file__, 1, "joined", (), None)
    assert all(limit.filter(info) for _ in range(5))
