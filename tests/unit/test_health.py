"""monitor.health: each /healthz check fails when its condition holds for `stall_s`, and
only then. Times are seconds on a made-up monotonic clock starting at 0."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import REGISTRY

from monitor.health import HealthCheck, HealthRules, Observation
from streams.bus.interface import ConsumerProgress, PartitionProgress, ProducerStatus

RULES = HealthRules(stall_s=60.0, max_unpriced_pct=0.25, report_max_age_s=10.0)


def progress(*parts: tuple[int, int | None], error: str = "") -> ConsumerProgress:
    """Partitions 0.. of `hm.ticks` as (log end, committed)."""
    return ConsumerProgress(
        "hm-detect",
        assigned=True,
        partitions=tuple(
            PartitionProgress("hm.ticks", i, end, committed, committed)
            for i, (end, committed) in enumerate(parts)
        ),
        error=error,
    )


def detect(now: float, ticks: int, consumer: ConsumerProgress | None = None) -> Observation:
    return Observation(
        now=now,
        ingest=False,
        detect=True,
        ticks_detected=ticks,
        consumer=consumer if consumer is not None else progress((100, 100)),
        venues=("binance", "kraken"),
        assets=8,
    )


def checks(check: HealthCheck, obs: Observation) -> list[str]:
    return [p.check for p in check.judge(obs).problems]


def test_detect_is_healthy_while_ticks_flow_and_commits_keep_up() -> None:
    check = HealthCheck(RULES, started=0.0)
    for second in range(0, 300, 10):
        assert checks(check, detect(second, ticks=second * 5)) == []


def test_no_ticks_consumed_for_stall_s_fails_and_recovers() -> None:
    check = HealthCheck(RULES, started=0.0)
    assert checks(check, detect(0, 10)) == []
    assert checks(check, detect(59, 10)) == []
    report = check.judge(detect(61, 10))
    assert [p.check for p in report.problems] == ["no_ticks"]
    assert "61 s" in report.problems[0].reason and not report.ok
    assert checks(check, detect(62, 11)) == []


def test_a_consumer_whose_commits_stand_still_while_records_wait_is_stuck() -> None:
    """The issue's case: the lag grows, the committed offset does not move."""
    check = HealthCheck(RULES, started=0.0)
    ticks = 0
    for second, end in ((0, 100), (30, 400), (59, 700)):
        ticks += 1  # ticks were still counted (a batch taken before the stall)
        assert checks(check, detect(second, ticks, progress((end, 100), (50, 50)))) == []
    report = check.judge(detect(61, ticks + 1, progress((900, 100), (60, 50))))
    assert [p.check for p in report.problems] == ["consumer_stuck"]
    assert "hm.ticks[0] 800 behind" in report.problems[0].reason
    assert "hm.ticks[1]" not in report.problems[0].reason  # its committed offset moves


def test_a_consumer_with_nothing_to_do_is_not_stuck() -> None:
    check = HealthCheck(RULES, started=0.0)
    for second in (0, 61, 200):
        assert checks(check, detect(second, second, progress((100, 100)))) == []


def test_a_member_without_partitions_for_stall_s_is_unassigned() -> None:
    check = HealthCheck(RULES, started=0.0)
    empty = ConsumerProgress("hm-detect", assigned=True)
    assert checks(check, detect(30, 1, empty)) == []
    assert checks(check, detect(61, 2, empty)) == ["consumer_unassigned"]


def test_a_broker_not_answering_for_stall_s_fails() -> None:
    check = HealthCheck(RULES, started=0.0)
    away = progress(error="cannot ask Kafka for offsets: timeout")
    assert checks(check, detect(0, 1)) == []
    assert checks(check, detect(30, 2, away)) == []
    assert checks(check, detect(61, 3, away)) == ["bus_unreachable"]


def test_every_venue_stale_fails_and_one_stale_venue_does_not() -> None:
    check = HealthCheck(RULES, started=0.0)
    one = replace(detect(0, 1), stale_venues=("kraken",))
    assert checks(check, one) == []
    both = replace(detect(1, 2), stale_venues=("binance", "kraken"))
    assert checks(check, both) == ["venues_stale"]


def test_unpriced_assets_fail_beyond_the_threshold_only() -> None:
    check = HealthCheck(RULES, started=0.0)
    two = replace(detect(0, 1), unpriced=("ADA", "DOT"))  # 2 of 8 = 25%: at the limit
    assert checks(check, two) == []
    three = replace(detect(1, 2), unpriced=("ADA", "DOT", "SOL"))  # 37.5%
    report = check.judge(three)
    assert [p.check for p in report.problems] == ["assets_unpriced"]
    assert report.problems[0].reason.startswith("3 of 8 assets have no fresh price")


def ingest(now: float, feeds: dict[str, str], producer: ProducerStatus) -> Observation:
    return Observation(now=now, ingest=True, detect=False, feeds=feeds, producer=producer)


def test_ingest_with_no_feed_subscribed_for_stall_s_fails() -> None:
    check = HealthCheck(RULES, started=0.0)
    ok = ProducerStatus(delivered=10, last_delivery=0.0)
    down = {"binance": "backoff", "kraken": "connecting"}
    assert checks(check, ingest(0, {"binance": "subscribed", "kraken": "backoff"}, ok)) == []
    assert checks(check, ingest(59, down, replace(ok, last_delivery=59.0))) == []
    assert checks(check, ingest(61, down, replace(ok, last_delivery=59.0))) == ["no_feed"]


def test_ingest_whose_records_fail_for_stall_s_fails() -> None:
    check = HealthCheck(RULES, started=0.0)
    feeds = {"binance": "subscribed"}
    failing = ProducerStatus(
        delivered=500, failed=40, last_delivery=10.0, last_failure=69.0, last_error="timeout"
    )
    assert checks(check, ingest(69, feeds, failing)) == []
    report = check.judge(ingest(71, feeds, replace(failing, last_failure=71.0)))
    assert [p.check for p in report.problems] == ["produce_failing"]
    assert "nothing delivered to the bus for 61 s" in report.problems[0].reason
    # Delivering again clears it, even with the old failures on record.
    assert checks(check, ingest(72, feeds, replace(failing, last_delivery=72.0))) == []


def test_a_report_not_refreshed_means_the_loop_is_stuck() -> None:
    check = HealthCheck(RULES, started=0.0)
    check.judge(detect(5, 1))
    assert check.current(now=14.0).ok
    late = check.current(now=16.0)
    assert [p.check for p in late.problems] == ["not_evaluated"]


def test_the_gauges_follow_the_report() -> None:
    check = HealthCheck(RULES, started=0.0)
    check.judge(replace(detect(0, 1), stale_venues=("binance", "kraken")))
    assert REGISTRY.get_sample_value("hm_health_ok") == 0
    assert REGISTRY.get_sample_value("hm_health_check_failing", {"check": "venues_stale"}) == 1
    assert REGISTRY.get_sample_value("hm_health_check_failing", {"check": "no_ticks"}) == 0
    check.judge(detect(1, 2))
    assert REGISTRY.get_sample_value("hm_health_ok") == 1
