"""The bench's running order: ceilings, ingest, detect, latency, then scaling and memory.

Everything runs in one process tree: this process (the monitor's stages), a spawned
simulated exchange per websocket section, the local Kafka-protocol broker when no
`--bootstrap` is given (the tansu the tests use), and a fresh spawned process per lot
count for scaling and memory. Without a broker the Kafka sections are skipped, with the
reason in the report.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from aiokafka.admin import AIOKafkaAdminClient

from monitor.bench.ceilings import consume_ceiling, produce_ceiling, websocket_ceiling
from monitor.bench.detect import measure_detect
from monitor.bench.ingest import measure_ingest
from monitor.bench.latency import measure_latency
from monitor.bench.lots import ALERT_SHARE, LotPlan, bench_settings, design_lots
from monitor.bench.market import MarketSpec, make_tape, steps_for, tape_payloads
from monitor.bench.memory import rss_source
from monitor.bench.report import BenchReport, LatencyResult
from monitor.bench.scaling import measure_sizes
from monitor.progress import Progress as Bar
from streams.bus.broker import BrokerNotFoundError, LocalBroker, find_broker
from streams.bus.kafka import LOCAL_BROKER_GROUP_TIMING, GroupTiming, KafkaBus

SCALING_SIZES = (10_000, 100_000, 1_000_000)
BIG_SIZE = 10_000_000
SCALING_TICKS = 50_000  # at most, per size
# The measured window: ticks / rate, within these bounds. Short, because tansu's fetches
# slow down as a partition grows (raw aiokafka at 5,000 ticks/s: p50 7 -> 19 ms in 25 s).
LATENCY_S = (2.0, 10.0)
SLACK_STEPS_S = 30.0  # price steps the simulator may take before the feed connects
LOCAL_FETCH_MAX_WAIT_MS = 10
WARM_UP_TICKS = 2_000  # fed to the detect section's detector before it is timed


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What `harvest-monitor bench` was asked to do."""

    lots: int = 1_000_000
    assets: int = 24
    ticks: int = 200_000
    rate: float = 5_000.0
    bootstrap: str | None = None
    big: bool = False
    sizes: tuple[int, ...] = ()  # empty: SCALING_SIZES (+ BIG_SIZE with --big)
    seed: int = 7

    def scaling_sizes(self) -> list[int]:
        if self.sizes:
            return sorted(set(self.sizes))
        return [*SCALING_SIZES, *([BIG_SIZE] if self.big else [])]

    def latency_window_s(self) -> float:
        low, high = LATENCY_S
        return min(high, max(low, self.ticks / self.rate))

    def warmup_s(self) -> float:
        return 3.0 if self.ticks >= 20_000 else 0.5


Progress = Callable[[str], None]


SECTIONS = ("ceilings", "ingest", "detect", "latency", "memory", "scaling")  # in run order


class BenchProgress:
    """Progress lines on stderr, stamped with the time since the bench started; on a
    terminal, a bar of the sections done below them (monitor.progress)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._started = time.monotonic()
        self._bar = Bar(
            "bench", len(SECTIONS), "sections", stream=stream or sys.stderr, every_s=1e9
        )
        self._section = 0

    def __call__(self, message: str) -> None:
        head = message.split(":", 1)[0].strip()
        if head == "lots":  # designing the lots opens the detect section
            head = "detect"
        if head in SECTIONS:
            self._section = max(self._section, SECTIONS.index(head))
        self._bar.update(self._section)  # sections before this one are done
        self._bar.note(f"[bench +{time.monotonic() - self._started:6.1f}s] {message}")

    def finish(self) -> None:
        """All sections done: the bar's last line (a terminal), nothing otherwise."""
        self._bar.finish()


def stderr_progress(stream: TextIO | None = None) -> BenchProgress:
    """The bench's progress on stderr (see BenchProgress)."""
    return BenchProgress(stream)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` says."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """The host the figures were measured on: a figure is only read against its host."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in load],
        "rss_source": rss_source(),
    }


async def run_bench(options: BenchOptions, progress: Progress) -> BenchReport:
    """Run every section; the report holds what was measured and what was skipped."""
    spec = MarketSpec(assets=options.assets, seed=options.seed)
    window_s, warmup_s = options.latency_window_s(), options.warmup_s()
    live_steps = steps_for(int(options.rate * (warmup_s + window_s + SLACK_STEPS_S)), spec.assets)
    plan = LotPlan(options.lots, spec, max(steps_for(options.ticks, spec.assets), live_steps))
    report = BenchReport(
        params={**asdict(options), "sizes": options.scaling_sizes()}, machine=machine()
    )
    report.params["latency_window_s"] = window_s
    report.params["warmup_s"] = warmup_s

    progress(f"ceilings: websocket receive+parse, {options.ticks:,} ticks from the simulator")
    report.websocket = await websocket_ceiling(spec, options.ticks)
    progress(f"ceilings: websocket {report.websocket.per_s:,.0f} ticks/s")

    async with _broker(options.bootstrap, report, progress) as broker:
        if broker is not None:
            await _kafka_sections(options, spec, plan, broker, report, progress)

    report.latency_memory = await _in_process_latency(options, spec, plan, progress)

    plans = [
        LotPlan(size, spec, plan.steps, plan.today, plan.seed) for size in options.scaling_sizes()
    ]
    ticks = min(options.ticks, SCALING_TICKS)
    report.sizes = await measure_sizes(plans, ticks, {}, progress)
    report.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.notes.extend(_notes(report))
    return report


async def _in_process_latency(
    options: BenchOptions, spec: MarketSpec, plan: LotPlan, progress: Progress
) -> LatencyResult:
    """The latency section again through the in-process bus: the embedded default (no
    `[kafka] bootstrap_servers`), which a single user runs."""
    settings = bench_settings()
    window_s, warmup_s = options.latency_window_s(), options.warmup_s()
    progress(
        f"latency: in-process bus, {options.rate:,.0f} ticks/s offered, "
        f"{warmup_s:.0f}+{window_s:.0f} s"
    )
    designed = design_lots(plan, settings)
    result = await measure_latency(settings, spec, designed.frame, options.rate, window_s, warmup_s)
    alert = result.alert
    progress(
        f"latency: in-process tick-to-alert p99 {alert.p99_ms:.1f} ms"
        if alert
        else "latency: in-process, no alerts"
    )
    return result


def _notes(report: BenchReport) -> list[str]:
    """What a reader needs to read the figures right."""
    notes = []
    if report.detect is not None:
        d = report.detect
        notes.append(
            f"detect and latency: {d.hot_lots:,} of the {d.lots:,} lots are hot (triggers "
            f"spread where the simulated price falls, sized for ~{ALERT_SHARE:.0%} of ticks to "
            "cross one, with cooldown 0 and a 0.1% re-arm band); the others sit below every "
            "price of the run and never fire"
        )
    if report.latency is not None:
        notes.append(
            "latency: tick-to-decision covers every tick received in the window (feed "
            "receive -> detector answer); tick-to-alert the ticks that raised an alert "
            "(-> the sink's write returned)"
        )
    if report.broker and "tansu" in report.broker:
        notes.append(
            f"tansu answers a fetch only when its wait is over, so the bench sets [kafka] "
            f"fetch_max_wait_ms = {LOCAL_FETCH_MAX_WAIT_MS} (with Kafka's 500 ms about half "
            "of it lands on every tick); its fetches also slow down as a partition grows, "
            f"so the latency window is at most {LATENCY_S[1]:.0f} s on fresh topics"
        )
    if report.websocket and report.produce and report.produce.per_s > 0:
        bound = report.websocket.per_s / report.produce.per_s
        notes.append(
            f"ingest cannot outrun the websocket ceiling, itself {bound:.2f} x the produce "
            "ceiling here"
        )
    if report.consume and report.consume.per_s > 0:
        ceiling_us = 1e6 / report.consume.per_s
        notes.append(
            f"consume+decode costs {ceiling_us:.1f} us a tick; detect at 0.8 x that ceiling "
            f"leaves {ceiling_us / 0.8 - ceiling_us:.1f} us a tick for prices, book, "
            "detection and alerts"
        )
    return notes


@dataclass(frozen=True, slots=True)
class _Broker:
    bootstrap: str
    local: bool


@contextlib.asynccontextmanager
async def _broker(
    bootstrap: str | None, report: BenchReport, progress: Progress
) -> AsyncIterator[_Broker | None]:
    if bootstrap:
        report.broker = f"Kafka at {bootstrap} (given with --bootstrap)"
        yield _Broker(bootstrap, local=False)
        return
    try:
        binary = find_broker()
    except BrokerNotFoundError as exc:
        reason = f"no Kafka broker: {exc}; or pass --bootstrap HOST:PORT"
        for section in ("produce", "consume", "ingest", "detect", "latency"):
            report.skipped[section] = reason
        progress(f"Kafka sections skipped: {reason}")
        yield None
        return
    async with LocalBroker(binary) as local:
        report.broker = f"{local.describe()}, started by the bench on {local.bootstrap}"
        progress(f"broker: {report.broker}")
        yield _Broker(local.bootstrap, local=True)


async def _kafka_sections(
    options: BenchOptions,
    spec: MarketSpec,
    plan: LotPlan,
    broker: _Broker,
    report: BenchReport,
    progress: Progress,
) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {name: f"hm.bench.{run}.{name}" for name in ("tape", "ingest", "ticks", "alerts")}
    overrides: dict[str, Any] = {
        "kafka.bootstrap_servers": broker.bootstrap,
        "kafka.ticks_topic": topics["ticks"],
        "kafka.alerts_topic": topics["alerts"],
        "kafka.group_id": f"hm-bench-{run}",
    }
    timing = LOCAL_BROKER_GROUP_TIMING if broker.local else GroupTiming()
    if broker.local:
        overrides["kafka.session_timeout_ms"] = timing.session_timeout_ms
        overrides["kafka.heartbeat_interval_ms"] = timing.heartbeat_interval_ms
        # tansu answers a fetch only when its wait is over, even if data came meanwhile:
        # with Kafka's 500 ms the tick latency would be the broker's, not the monitor's.
        overrides["kafka.fetch_max_wait_ms"] = LOCAL_FETCH_MAX_WAIT_MS
    settings = bench_settings(overrides)
    config = settings.kafka.bus_config()
    bus = KafkaBus(config, group_timing=timing)
    await bus.ensure_topics(list(topics.values()))
    try:
        progress(f"tape: {options.ticks:,} ticks of {spec.assets} assets")
        tape = make_tape(spec, options.ticks)
        payloads = tape_payloads(tape)
        warm = tape[:WARM_UP_TICKS]
        del tape
        progress("ceilings: raw aiokafka produce")
        report.produce = await produce_ceiling(config, topics["tape"], payloads)
        progress(f"ceilings: produce {report.produce.per_s:,.0f} ticks/s")
        report.consume = await consume_ceiling(config, topics["tape"], len(payloads))
        progress(f"ceilings: consume+decode {report.consume.per_s:,.0f} ticks/s")
        del payloads

        progress("ingest: simulator -> feed -> Kafka")
        report.ingest = await measure_ingest(settings, bus, spec, topics["ingest"], options.ticks)
        progress(f"ingest: {report.ingest.per_s:,.0f} ticks/s")

        progress(f"lots: designing {options.lots:,} (about {ALERT_SHARE:.0%} of ticks alert)")
        designed = design_lots(plan, settings)
        progress("detect: Kafka -> prices -> book -> detection -> null sink")
        report.detect = await measure_detect(
            settings, bus, topics["tape"], options.ticks, designed.frame, designed.hot, warm
        )
        progress(f"detect: {report.detect.throughput.per_s:,.0f} ticks/s")

        window_s, warmup_s = options.latency_window_s(), options.warmup_s()
        progress(f"latency: {options.rate:,.0f} ticks/s offered, {warmup_s:.0f}+{window_s:.0f} s")
        report.latency = await measure_latency(
            settings, spec, designed.frame, options.rate, window_s, warmup_s
        )
        alert = report.latency.alert
        progress(
            f"latency: tick-to-alert p99 {alert.p99_ms:.1f} ms" if alert else "latency: no alerts"
        )
    finally:
        if not broker.local:
            await _delete_topics(broker.bootstrap, list(topics.values()))


async def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Best effort: leave a shared cluster as the bench found it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    with contextlib.suppress(Exception):
        await admin.start()
        await admin.delete_topics(topics)
    with contextlib.suppress(Exception):
        await admin.close()
