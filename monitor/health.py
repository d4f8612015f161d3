"""What /healthz answers: can this process do its job right now, and if not, why.

`HealthCheck.judge` takes an `Observation` (what the pipeline sees at one moment: tick
counters, feed states, the producer's deliveries, the consumer's progress per partition,
stale venues and unpriced assets) and remembers across calls when each count last moved.
The running pipeline observes once a second (`stages.health_stage`); /healthz serves the
last report, 503 while any check fails (or when no report is fresh: a stuck event loop).

Checks (`CHECKS`), by role (`run` and `demo` do both halves):
- detect: `no_ticks` (none consumed for `stall_s`), `consumer_unassigned` (no partition
  of the ticks topic for `stall_s`), `consumer_stuck` (a partition with records the group
  has not committed, and its committed offset still for `stall_s`), `bus_unreachable`
  (the broker not answering offset requests for `stall_s`), `assets_unpriced` (more than
  `max_unpriced_pct` of the portfolio's assets without a fresh venue);
- ingest: `no_feed` (no venue subscribed for `stall_s`), `produce_failing` (records
  handed to the bus and none delivered for `stall_s`);
- both: `venues_stale` (every configured venue silent past `[prices] venue_stale_s`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from prometheus_client import Gauge

from streams.bus.interface import ConsumerProgress, ProducerStatus

__all__ = ["CHECKS", "HealthCheck", "HealthReport", "HealthRules", "Observation", "Problem"]

Check = Literal[
    "no_ticks",
    "consumer_unassigned",
    "consumer_stuck",
    "bus_unreachable",
    "assets_unpriced",
    "no_feed",
    "produce_failing",
    "venues_stale",
    "not_evaluated",
]
CHECKS: tuple[Check, ...] = get_args(Check)

HEALTH_OK = Gauge("hm_health_ok", "1 while /healthz answers 200 (every check passes), else 0.")
HEALTH_FAILING = Gauge(
    "hm_health_check_failing",
    "1 while a /healthz check fails (no_ticks, consumer_unassigned, consumer_stuck, "
    "bus_unreachable, assets_unpriced, no_feed, produce_failing, venues_stale, "
    "not_evaluated), else 0.",
    ["check"],
)


@dataclass(frozen=True, slots=True)
class HealthRules:
    """`[health]`: how long a stall may last, and how many assets may go unpriced."""

    stall_s: float = 60.0
    max_unpriced_pct: float = 0.25  # fraction of the portfolio's assets
    report_max_age_s: float = 10.0  # an older report means the event loop is stuck


@dataclass(frozen=True, slots=True)
class Problem:
    """One failing check and what an operator should read about it."""

    check: Check
    reason: str


@dataclass(frozen=True, slots=True)
class Observation:
    """What the pipeline sees at one moment (`now`: time.monotonic())."""

    now: float
    ingest: bool
    detect: bool
    ticks_in: int = 0
    ticks_detected: int = 0
    feeds: Mapping[str, str] = field(default_factory=dict)  # venue -> feed state
    producer: ProducerStatus | None = None
    consumer: ConsumerProgress | None = None
    venues: Sequence[str] = ()  # configured venues
    stale_venues: Sequence[str] = ()
    assets: int = 0  # the portfolio's assets
    unpriced: Sequence[str] = ()  # assets without a fresh venue


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The verdict of one observation."""

    at: float  # time.monotonic() of the observation
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [{"check": p.check, "reason": p.reason} for p in self.problems],
        }


class HealthCheck:
    """Judges observations over time; remembers when each count or offset last moved."""

    def __init__(self, rules: HealthRules, started: float | None = None) -> None:
        self.rules = rules
        self.started = time.monotonic() if started is None else started
        self._ticks_in = (-1, self.started)  # (count, when it last changed)
        self._ticks_detected = (-1, self.started)
        self._assigned_at = self.started  # last time the consumer held partitions
        self._answered_at = self.started  # last time the broker answered progress
        self._subscribed_at = self.started  # last time a feed was subscribed
        self._committed: dict[tuple[str, int], tuple[int | None, float]] = {}
        self.report = HealthReport(self.started)

    def judge(self, obs: Observation) -> HealthReport:
        """The report for `obs`; also kept as `self.report` and set on the gauges."""
        problems: list[Problem] = []
        if obs.detect:
            problems += self._detect(obs)
        if obs.ingest:
            problems += self._ingest(obs)
        if obs.venues and set(obs.venues) <= set(obs.stale_venues):
            problems.append(
                Problem(
                    "venues_stale",
                    f"every venue is stale ({', '.join(sorted(obs.venues))}): no fresh price",
                )
            )
        self.report = HealthReport(obs.now, tuple(problems))
        publish(self.report)
        return self.report

    def current(self, now: float | None = None) -> HealthReport:
        """The last report, or a failing one when it is older than `report_max_age_s`."""
        now = time.monotonic() if now is None else now
        age = now - self.report.at
        if age <= self.rules.report_max_age_s:
            return self.report
        stale = Problem(
            "not_evaluated", f"health not evaluated for {age:.0f} s: the event loop is stuck"
        )
        return HealthReport(self.report.at, (*self.report.problems, stale))

    def _stalled(self, since: float, now: float) -> bool:
        return now - since >= self.rules.stall_s

    def _detect(self, obs: Observation) -> list[Problem]:
        now, out = obs.now, []
        count, since = self._ticks_detected
        if obs.ticks_detected != count:
            self._ticks_detected = (obs.ticks_detected, now)
        elif self._stalled(since, now):
            out.append(
                Problem("no_ticks", f"no tick consumed from the bus for {now - since:.0f} s")
            )
        consumer = obs.consumer
        if consumer is None:
            return out + self._unpriced(obs)
        if consumer.error:
            if self._stalled(self._answered_at, now):
                out.append(
                    Problem(
                        "bus_unreachable",
                        f"{consumer.error} (for {now - self._answered_at:.0f} s)",
                    )
                )
        else:
            self._answered_at = now
            if consumer.partitions:
                self._assigned_at = now
            elif self._stalled(self._assigned_at, now):
                out.append(
                    Problem(
                        "consumer_unassigned",
                        f"consumer group {consumer.group!r} gave this member no partition for "
                        f"{now - self._assigned_at:.0f} s",
                    )
                )
            out += self._stuck(consumer, now)
        return out + self._unpriced(obs)

    def _stuck(self, consumer: ConsumerProgress, now: float) -> list[Problem]:
        stuck = []
        seen = {}
        for p in consumer.partitions:
            key = (p.topic, p.partition)
            committed, since = self._committed.get(key, (p.committed, now))
            lag = p.lag or 0
            if p.committed != committed or lag == 0:
                since = now  # moving, or nothing to do
            seen[key] = (p.committed, since)
            if lag > 0 and self._stalled(since, now):
                stuck.append(f"{p.topic}[{p.partition}] {lag} behind")
        self._committed = seen
        if not stuck:
            return []
        return [
            Problem(
                "consumer_stuck",
                f"consumer group {consumer.group!r} committed nothing for "
                f"{self.rules.stall_s:.0f} s with records waiting: {', '.join(stuck[:6])}",
            )
        ]

    def _unpriced(self, obs: Observation) -> list[Problem]:
        if not obs.assets or len(obs.unpriced) <= self.rules.max_unpriced_pct * obs.assets:
            return []
        return [
            Problem(
                "assets_unpriced",
                f"{len(obs.unpriced)} of {obs.assets} assets have no fresh price (more than "
                f"{self.rules.max_unpriced_pct:.0%}): {', '.join(sorted(obs.unpriced)[:10])}",
            )
        ]

    def _ingest(self, obs: Observation) -> list[Problem]:
        now, out = obs.now, []
        if not obs.feeds or any(state == "subscribed" for state in obs.feeds.values()):
            self._subscribed_at = now
        elif self._stalled(self._subscribed_at, now):
            states = ", ".join(f"{v} {s}" for v, s in sorted(obs.feeds.items()))
            out.append(
                Problem(
                    "no_feed",
                    f"no venue subscribed for {now - self._subscribed_at:.0f} s ({states})",
                )
            )
        status = obs.producer
        if status is not None:
            last = status.last_delivery if status.last_delivery is not None else self.started
            trying = status.pending > 0 or (
                status.last_failure is not None and status.last_failure >= last
            )
            if trying and self._stalled(last, now):
                error = f": {status.last_error}" if status.last_error else ""
                out.append(
                    Problem(
                        "produce_failing",
                        f"nothing delivered to the bus for {now - last:.0f} s, "
                        f"{status.failed} records failed so far{error}",
                    )
                )
        return out


def publish(report: HealthReport) -> None:
    """Set `hm_health_ok` and `hm_health_check_failing{check}` from `report`."""
    failing = {p.check for p in report.problems}
    HEALTH_OK.set(0 if failing else 1)
    for check in CHECKS:
        HEALTH_FAILING.labels(check).set(1 if check in failing else 0)
