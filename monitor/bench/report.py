"""The bench's figures, the issue's targets beside them, the table and the JSON.

Targets (issue 7; ingest and rebuild as issue 14 set them; 2 cores, this machine's class)
are shown as met / missed, never enforced: the bench reports what it measures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.bench.pauses import Pauses

SCHEMA = "hm.bench/1"
INGEST_RATIO = 0.9  # of the raw websocket receive+parse ceiling (issue 14; was 0.7 x produce)
DETECT_RATIO = 0.8  # of the raw consume+decode ceiling, with 1M open lots
SCALING_RATIO = 1.3  # cost per tick at 1M lots over its cost at 10k
LATENCY_P99_MS = 50.0  # tick-to-alert p99 ...
LATENCY_RATE = 5_000.0  # ... at this many ticks/s through Kafka
RSS_PER_LOT = 200.0  # bytes
REBUILD_S_PER_1M = 3.0  # book + trigger index from the ledger for 1M lots (issue 14)
STALL_MS = 100.0  # issue 14: no stall over this in a 60 s window
HISTOGRAM_EDGES_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


@dataclass(frozen=True, slots=True)
class Throughput:
    """`ticks` in `seconds` of sustained work."""

    ticks: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.ticks / self.seconds if self.seconds > 0 else 0.0

    def json(self) -> dict[str, float]:
        return {"ticks": self.ticks, "seconds": self.seconds, "ticks_per_s": self.per_s}


@dataclass(frozen=True, slots=True)
class Spread:
    """A latency distribution in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @staticmethod
    def of_ns(values: Sequence[int]) -> Spread | None:
        if not values:
            return None
        ms = np.asarray(values, dtype=np.float64) / 1e6
        p50, p99 = np.percentile(ms, [50, 99])
        return Spread(len(values), float(p50), float(p99), float(ms.max()))

    def text(self) -> str:
        return f"{self.p50_ms:.2f} / {self.p99_ms:.2f} / {self.max_ms:.2f} ms"


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of latencies per bucket: `counts[i]` are those <= `HISTOGRAM_EDGES_MS[i]`
    (and above the edge before); the last count is those above the last edge."""

    counts: tuple[int, ...]

    @staticmethod
    def of_ns(values: Sequence[int]) -> Histogram:
        ms = np.asarray(values, dtype=np.float64) / 1e6
        at = np.searchsorted(np.asarray(HISTOGRAM_EDGES_MS), ms, side="left")
        counts = np.bincount(at, minlength=len(HISTOGRAM_EDGES_MS) + 1)
        return Histogram(tuple(int(c) for c in counts))

    def buckets(self) -> list[tuple[str, int]]:
        """(label, count) per bucket, e.g. ("<= 5 ms", 12), ("> 1000 ms", 0)."""
        labels = [f"<= {edge:g} ms" for edge in HISTOGRAM_EDGES_MS]
        labels.append(f"> {HISTOGRAM_EDGES_MS[-1]:g} ms")
        return list(zip(labels, self.counts, strict=True))

    def above(self, ms: float) -> int:
        """How many were above `ms` (an edge)."""
        return sum(self.counts[HISTOGRAM_EDGES_MS.index(ms) + 1 :])


@dataclass(frozen=True, slots=True)
class DetectResult:
    throughput: Throughput
    lots: int
    hot_lots: int
    alerts: int
    alerting_ticks: int


@dataclass(frozen=True, slots=True)
class LatencyResult:
    offered_per_s: float
    window_s: float
    ingested: int  # ticks the feeds took in during the window
    decision: Spread | None  # every tick received in the window
    alert: Spread | None  # the ticks of that window that caused an alert
    alerts: int
    alerting_ticks: int
    bus: str = "kafka"  # "kafka" or "in-process" (no broker)
    alert_histogram: Histogram | None = None  # the tick-to-alert figures, bucketed
    decision_histogram: Histogram | None = None
    pauses: tuple[Pauses, ...] = ()  # the collector's, per generation, in the window

    @property
    def achieved_per_s(self) -> float:
        count = self.decision.count if self.decision else 0
        return count / self.window_s if self.window_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SizeResult:
    """Detection cost and memory with `lots` open lots (measured in a fresh process)."""

    lots: int
    hot_lots: int
    ticks: int
    cost_mean_us: float
    cost_p50_us: float
    cost_p99_us: float
    cost_quiet_mean_us: float  # over the ticks that raised no alert (index and prices only)
    alerts: int
    alerting_ticks: int
    design_s: float  # making the synthetic lot frame (not part of a rebuild)
    rebuild_s: float  # the book and its trigger index, from `rebuild_source`
    ledger_read_s: float | None  # the part of it reading the open lots from the ledger
    first_alert_s: float | None  # the tick of the first alert after the start, on its own
    rebuild_source: str
    rss_bytes_per_lot: float | None  # None: RSS not readable here
    frame_bytes_per_lot: float  # polars' own estimate of the lot frame


@dataclass(frozen=True, slots=True)
class Target:
    """One target of the issue: `value` `sense` `limit`; `caveat` says when it differs."""

    figure: str
    value: float | None
    limit: float
    sense: str  # ">=" or "<="
    caveat: str = ""

    @property
    def judged(self) -> bool:
        return self.value is not None and not self.caveat.startswith("not judged")

    @property
    def met(self) -> bool | None:
        if not self.judged or self.value is None:
            return None
        return self.value >= self.limit if self.sense == ">=" else self.value <= self.limit

    def text(self) -> str:
        return f"{self.sense} {self.limit:g}"

    def json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "value": self.value,
            "target": self.text(),
            "met": self.met,
            "caveat": self.caveat,
        }


@dataclass
class BenchReport:
    """Everything one run measured; sections a run skipped are None (see `skipped`)."""

    params: dict[str, Any]
    machine: dict[str, Any]
    broker: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # section -> why
    produce: Throughput | None = None
    consume: Throughput | None = None
    websocket: Throughput | None = None
    ingest: Throughput | None = None
    detect: DetectResult | None = None
    latency: LatencyResult | None = None  # through Kafka, as `run` wires it with a broker
    latency_memory: LatencyResult | None = None  # through the in-process bus (no broker)
    sizes: list[SizeResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # Derived figures ----------------------------------------------------------------------

    def ingest_ratio(self) -> float | None:
        return _ratio(self.ingest, self.produce)

    def ingest_ws_ratio(self) -> float | None:
        return _ratio(self.ingest, self.websocket)

    def detect_ratio(self) -> float | None:
        return _ratio(self.detect.throughput if self.detect else None, self.consume)

    def scaling_pair(self) -> tuple[SizeResult, SizeResult] | None:
        """(smallest, reference) sizes: 1M lots if measured, else the largest."""
        if len(self.sizes) < 2:
            return None
        by_lots = sorted(self.sizes, key=lambda s: s.lots)
        reference = next((s for s in by_lots if s.lots == 1_000_000), by_lots[-1])
        return by_lots[0], reference

    def scaling_ratio(self) -> float | None:
        pair = self.scaling_pair()
        if pair is None or pair[0].cost_mean_us <= 0:
            return None
        return pair[1].cost_mean_us / pair[0].cost_mean_us

    def scaling_ratio_quiet(self) -> float | None:
        """The same ratio over the ticks that raised no alert (the index and prices alone)."""
        pair = self.scaling_pair()
        if pair is None or pair[0].cost_quiet_mean_us <= 0:
            return None
        return pair[1].cost_quiet_mean_us / pair[0].cost_quiet_mean_us

    def memory_size(self) -> SizeResult | None:
        """The size memory figures are reported for: 1M lots if measured, else the largest."""
        if not self.sizes:
            return None
        return next((s for s in self.sizes if s.lots == 1_000_000), max(self.sizes, key=_lots))

    def targets(self) -> list[Target]:
        """Each target with the figure it judges; `met` is None when it does not apply."""
        lat, mem, det = self.latency, self.memory_size(), self.detect
        pair = self.scaling_pair()
        full = mem is not None and mem.lots >= 1_000_000  # memory targets are for 1M lots
        scale = mem.lots / 1e6 if mem else 1.0
        return [
            Target("ingest / websocket ceiling", self.ingest_ws_ratio(), INGEST_RATIO, ">="),
            Target(
                "detect / consume ceiling",
                self.detect_ratio(),
                DETECT_RATIO,
                ">=",
                "" if det is None or det.lots >= 1_000_000 else "the target is at 1,000,000 lots",
            ),
            Target(
                "cost per tick ratio",
                self.scaling_ratio(),
                SCALING_RATIO,
                "<=",
                ""
                if pair is None or (pair[0].lots, pair[1].lots) == (10_000, 1_000_000)
                else "the target is 1,000,000 / 10,000 lots",
            ),
            Target(
                "tick-to-alert p99 ms",
                lat.alert.p99_ms if lat and lat.alert else None,
                LATENCY_P99_MS,
                "<=",
                ""
                if lat is None or lat.offered_per_s == LATENCY_RATE
                else f"the target is at {LATENCY_RATE:,.0f} ticks/s",
            ),
            Target(
                "RSS bytes per lot",
                mem.rss_bytes_per_lot if mem else None,
                RSS_PER_LOT,
                "<=",
                "" if full else "not judged below 1,000,000 lots (fixed costs dominate)",
            ),
            Target(
                "book rebuild s",
                mem.rebuild_s if mem else None,
                REBUILD_S_PER_1M * max(scale, 1.0),
                "<=",
                "" if full else "not judged below 1,000,000 lots",
            ),
        ]

    def json(self) -> dict[str, Any]:
        """The JSON document `--json` writes (schema hm.bench/1)."""
        lat, det = self.latency, self.detect
        pair = self.scaling_pair()
        mem = self.memory_size()
        return {
            "schema": SCHEMA,
            "params": self.params,
            "machine": self.machine,
            "broker": self.broker,
            "skipped": self.skipped,
            "ceilings": {
                "produce": _json(self.produce),
                "consume_decode": _json(self.consume),
                "websocket": _json(self.websocket),
            },
            "ingest": None
            if self.ingest is None
            else {
                **self.ingest.json(),
                "ratio_to_produce_ceiling": self.ingest_ratio(),
                "ratio_to_websocket_ceiling": self.ingest_ws_ratio(),
            },
            "detect": None
            if det is None
            else {
                **det.throughput.json(),
                "lots": det.lots,
                "hot_lots": det.hot_lots,
                "alerts": det.alerts,
                "alerting_ticks": det.alerting_ticks,
                "ratio_to_consume_ceiling": self.detect_ratio(),
            },
            "latency": _latency(lat),
            "latency_in_process": _latency(self.latency_memory),
            "scaling": {
                "sizes": [_size(s) for s in sorted(self.sizes, key=_lots)],
                "ratio": self.scaling_ratio(),
                "ratio_quiet": self.scaling_ratio_quiet(),
                "ratio_of": f"{pair[1].lots}/{pair[0].lots}" if pair else None,
            },
            "memory": None
            if mem is None
            else {
                "lots": mem.lots,
                "rss_bytes_per_lot": mem.rss_bytes_per_lot,
                "frame_bytes_per_lot": mem.frame_bytes_per_lot,
                "rebuild_s": mem.rebuild_s,
                "ledger_read_s": mem.ledger_read_s,
                "first_alert_s": mem.first_alert_s,
                "rebuild_source": mem.rebuild_source,
            },
            "targets": [t.json() for t in self.targets()],
            "notes": self.notes,
        }


def _lots(size: SizeResult) -> int:
    return size.lots


def _ratio(part: Throughput | None, whole: Throughput | None) -> float | None:
    if part is None or whole is None or whole.per_s <= 0:
        return None
    return part.per_s / whole.per_s


def _json(value: Throughput | None) -> dict[str, float] | None:
    return None if value is None else value.json()


def _spread(value: Spread | None) -> dict[str, float] | None:
    if value is None:
        return None
    return {"count": value.count, "p50": value.p50_ms, "p99": value.p99_ms, "max": value.max_ms}


def _latency(lat: LatencyResult | None) -> dict[str, Any] | None:
    if lat is None:
        return None
    return {
        "bus": lat.bus,
        "offered_ticks_per_s": lat.offered_per_s,
        "achieved_ticks_per_s": lat.achieved_per_s,
        "window_s": lat.window_s,
        "ingested_ticks": lat.ingested,
        "alerts": lat.alerts,
        "alerting_ticks": lat.alerting_ticks,
        "tick_to_decision_ms": _spread(lat.decision),
        "tick_to_alert_ms": _spread(lat.alert),
        "tick_to_alert_histogram": _histogram(lat.alert_histogram),
        "tick_to_decision_histogram": _histogram(lat.decision_histogram),
        "collector_pauses": [p.json() for p in lat.pauses],
    }


def _histogram(value: Histogram | None) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    return [{"bucket": label, "count": count} for label, count in value.buckets()]


def _size(s: SizeResult) -> dict[str, Any]:
    return {
        "lots": s.lots,
        "hot_lots": s.hot_lots,
        "ticks": s.ticks,
        "cost_us_per_tick": s.cost_mean_us,
        "cost_p50_us": s.cost_p50_us,
        "cost_p99_us": s.cost_p99_us,
        "cost_quiet_mean_us": s.cost_quiet_mean_us,
        "alerts": s.alerts,
        "alerting_ticks": s.alerting_ticks,
        "design_s": s.design_s,
        "rebuild_s": s.rebuild_s,
        "ledger_read_s": s.ledger_read_s,
        "first_alert_s": s.first_alert_s,
        "rebuild_source": s.rebuild_source,
        "rss_bytes_per_lot": s.rss_bytes_per_lot,
        "frame_bytes_per_lot": s.frame_bytes_per_lot,
    }


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
