"""Wiring: builds the stages each command runs and supervises them.

    feeds --(ingest)--> bus topic hm.ticks --(detect)--> Detector --> sinks

`run` runs both halves in one process (over the in-process bus unless Kafka is
configured); `ingest` and `detect` run one half each over Kafka; `replay` feeds a tick
file straight into the Detector in event time. Stages are supervised by a TaskGroup: a
failing stage stops the process loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import polars as pl

from monitor import metrics
from monitor.alerts.channels import subscription_sinks, subscriptions_ledger
from monitor.alerts.interface import AlertSink
from monitor.alerts.jsonl import JsonLinesSink
from monitor.alerts.kafka import BusSink
from monitor.alerts.recording import RecordingSink
from monitor.alerts.schema import Alert, encode_alert
from monitor.alerts.store import AlertStore
from monitor.detect import Detector, build_detector
from monitor.execute.assembly import execution_ledger, execution_stage
from monitor.execute.executor import Executor
from monitor.feeds import build_feed_configs
from monitor.ledger.ledger import Ledger
from monitor.prices.health import FeedWatch
from monitor.settings import Settings
from streams.bus.factory import make_bus
from streams.bus.interface import Bus, Consumer, Producer
from streams.errors import TickFormatError
from streams.feeds.interface import Feed
from streams.feeds.registry import make_feed
from streams.ticks import Tick, decode_tick, encode_tick, tick_key

log = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0


def build_feeds(
    settings: Settings, assets: Iterable[str], urls: Mapping[str, str] | None = None
) -> list[Feed]:
    """One feed per `[[feeds]]` entry (monitor/feeds.py); `urls` maps venue -> URL override."""
    return [make_feed(config) for config in build_feed_configs(settings, assets, urls)]


def build_sinks(
    settings: Settings,
    bus: Bus | None,
    *,
    stdout: IO[bytes] | None = None,
    alert_store: AlertStore | None = None,
) -> list[AlertSink]:
    """Alert sinks: with a ledger (`alert_store`) the alert is recorded first (and only
    alerts new to the ledger go further, see `emit`), then go the `[[webhooks]]` and the
    websocket subscribers (monitor/alerts/channels.py); then `[alerts]`: stdout, a file,
    the bus topic (when Kafka is set)."""
    sinks: list[AlertSink] = subscription_sinks(settings, alert_store)
    if settings.alerts.stdout:
        sinks.append(JsonLinesSink(stream=stdout))
    if settings.alerts.file:
        sinks.append(JsonLinesSink(settings.alerts.file))
    if bus is not None and settings.alerts.kafka and settings.kafka.bootstrap_servers:
        sinks.append(BusSink(bus.producer(), settings.kafka.alerts_topic))
    return sinks


async def emit(sinks: Sequence[AlertSink], alerts: Sequence[Alert], recv_ns: int) -> int:
    """Send alerts to every sink; one failing sink is counted and logged, others go on.

    The ledger's recorder (first in `sinks` when there is a ledger, see build_sinks) is a
    gate: the sinks after it get only the alerts it had not recorded before, so an alert
    detected again from re-processed ticks goes to no one twice. If recording fails, the
    whole batch goes on (a possible repeat beats a loss). Returns how many alerts went on.
    """
    if not alerts:
        return 0
    batch = [(alert, encode_alert(alert)) for alert in alerts]
    for sink in sinks:
        try:
            if isinstance(sink, RecordingSink):
                batch = sink.record(batch)
                if not batch:
                    return 0
            else:
                await sink.send(batch)
        except Exception as exc:  # a sink is a plug-in: its failure must not stop detection
            metrics.SINK_ERRORS.labels(sink.name).inc(len(batch))
            log.error("alert sink failed: %s", exc, extra={"sink": sink.name})
    latency = max(0.0, (time.time_ns() - recv_ns) / 1e9)
    for _ in batch:
        metrics.TICK_TO_ALERT.observe(latency)
    return len(batch)


@dataclass
class Counters:
    """What the status line shows."""

    ticks_in: int = 0
    ticks_detected: int = 0
    alerts: int = 0
    started: float = field(default_factory=time.monotonic)


async def ingest_stage(feed: Feed, producer: Producer, topic: str, counters: Counters) -> None:
    """Feed -> bus: every batch of ticks published keyed by base asset."""
    async for batch in feed.batches():
        await producer.publish_many(topic, [(tick_key(t), encode_tick(t)) for t in batch])
        counters.ticks_in += len(batch)


async def detect_stage(
    consumer: Consumer,
    detector: Detector,
    sinks: Sequence[AlertSink],
    counters: Counters,
    *,
    max_records: int,
) -> None:
    """Bus -> detection -> sinks; offsets are committed after the alerts are out."""
    while True:
        records = await consumer.get_batch(max_records, 0.5)
        if not records:
            continue
        started = time.perf_counter()
        by_venue: dict[str, int] = {}  # counted per batch: labels() per tick costs ~1 us
        try:
            for record in records:
                try:
                    tick = decode_tick(record.value)
                except TickFormatError as exc:
                    metrics.TICKS_REJECTED.labels("undecodable").inc()
                    log.warning(
                        "undecodable tick skipped: %s",
                        exc,
                        extra={
                            "topic": record.topic,
                            "partition": record.partition,
                            "offset": record.offset,
                        },
                    )
                    continue
                by_venue[tick.venue] = by_venue.get(tick.venue, 0) + 1
                alerts = detector.on_tick(tick)
                if alerts:
                    counters.alerts += await emit(sinks, alerts, tick.recv_ns)
        finally:
            for venue, count in by_venue.items():
                metrics.TICKS_PROCESSED.labels(venue).inc(count)
        counters.ticks_detected += len(records)
        metrics.DETECT_BATCH.observe(time.perf_counter() - started)
        await consumer.commit()


def status_line(
    counters: Counters,
    detector: Detector | None,
    feeds: Sequence[Feed],
    window: tuple[float, int],
    watch: FeedWatch | None = None,
) -> str:
    """`ticks 1234 (246/s) | lots 342 | alerts 12 | binance subscribed ...`."""
    now = time.monotonic()
    then, ticks_then = window
    # The rate of the half this process runs: detected when detecting, else ingested.
    seen = counters.ticks_detected if detector is not None else counters.ticks_in
    rate = (seen - ticks_then) / max(now - then, 1e-9)
    parts = [f"ticks in {counters.ticks_in} detected {counters.ticks_detected} ({rate:,.0f}/s)"]
    if detector is not None:
        parts.append(f"lots {detector.book.lot_count}")
    parts.append(f"alerts {counters.alerts}")
    if watch is not None:  # per venue: state, age, reconnects, gaps, drops, STALE
        return " | ".join(parts + watch.describe([f.status for f in feeds]))
    for feed in feeds:
        st = feed.status
        dropped = sum(st.dropped.values())
        age = f"{(time.time_ns() - st.last_tick_ns) / 1e9:.1f}s" if st.last_tick_ns else "-"
        parts.append(
            f"{st.venue} {st.state.value} age {age} reconnects {st.reconnects} dropped {dropped}"
        )
    return " | ".join(parts)


async def status_stage(
    counters: Counters,
    detector: Detector | None,
    feeds: Sequence[Feed],
    out: TextIO,
    watch: FeedWatch | None = None,
) -> None:
    """A one-line status on stderr every few seconds."""
    window = (time.monotonic(), 0)
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        out.write(f"[status] {status_line(counters, detector, feeds, window, watch)}\n")
        out.flush()
        seen = counters.ticks_detected if detector is not None else counters.ticks_in
        window = (time.monotonic(), seen)


async def watch_stage(watch: FeedWatch, feeds: Sequence[Feed], every_s: float = 1.0) -> None:
    """Feed health on the wall clock: stale venues and unpriced assets, logged on change."""
    while True:
        watch.check(time.time_ns(), {f.status.venue: f.status.last_tick_ns for f in feeds})
        await asyncio.sleep(every_s)


@dataclass
class Pipeline:
    """The stages of one process: which halves run is decided by `ingest` / `detect`."""

    settings: Settings
    bus: Bus
    feeds: list[Feed]
    detector: Detector | None
    sinks: list[AlertSink]
    counters: Counters = field(default_factory=Counters)
    status_out: TextIO | None = sys.stderr
    watch: FeedWatch | None = None  # stale venues, assets without a fresh price
    ledger: Ledger | None = None  # opened for the run: alerts recorded, dead letters kept
    executor: Executor | None = None  # [execution] paper | live: its own task beside detection

    def health(self) -> dict[str, Any]:
        """/healthz: ok while every feed is subscribed (or there are none); `degraded`
        while a venue is stale or an asset has no fresh venue (details under `prices`)."""
        feeds = {f.status.venue: f.status.state.value for f in self.feeds}
        ok = all(state == "subscribed" for state in feeds.values()) or not feeds
        out = {
            "ok": ok,
            "feeds": feeds,
            "ticks_in": self.counters.ticks_in,
            "ticks_detected": self.counters.ticks_detected,
            "alerts": self.counters.alerts,
            "bus": self.bus.description,
        }
        if self.watch is not None:
            out["degraded"] = bool(self.watch.stale or self.watch.excluded)
            out["prices"] = self.watch.snapshot([f.status for f in self.feeds])
        return out

    async def run(self, until: Callable[[], Awaitable[None]]) -> None:
        """Run the stages until `until()` returns, then stop everything in order."""
        s = self.settings
        await self.bus.ensure_topics([s.kafka.ticks_topic, s.kafka.alerts_topic])
        server = (
            metrics.MetricsServer(s.metrics.host, s.metrics.port, self.health)
            if s.metrics.port
            else None
        )
        async with contextlib.AsyncExitStack() as stack:
            if server is not None:
                await server.start()
                stack.push_async_callback(server.stop)
            producer = None
            if self.feeds:
                producer = self.bus.producer()
                await producer.start()
                stack.push_async_callback(producer.stop)
            consumer = None
            if self.detector is not None:
                consumer = self.bus.consumer([s.kafka.ticks_topic], s.kafka.group_id)
                await consumer.start()
                stack.push_async_callback(consumer.stop)
                if self.ledger is not None:  # before the sinks, closed after them
                    await self.ledger.start()
                    stack.push_async_callback(self.ledger.stop)
                for sink in self.sinks:
                    await sink.start()
                    stack.push_async_callback(sink.stop)
                if self.executor is not None:
                    await self.executor.start()
                    stack.push_async_callback(self.executor.stop)
            for feed in self.feeds:
                await feed.start()
                stack.push_async_callback(feed.stop)
            await self._supervise(until, producer, consumer)

    async def _supervise(
        self,
        until: Callable[[], Awaitable[None]],
        producer: Producer | None,
        consumer: Consumer | None,
    ) -> None:
        s = self.settings
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as group:
                if producer is not None:
                    for feed in self.feeds:
                        tasks.append(
                            group.create_task(
                                ingest_stage(feed, producer, s.kafka.ticks_topic, self.counters)
                            )
                        )
                if consumer is not None and self.detector is not None:
                    tasks.append(
                        group.create_task(
                            detect_stage(
                                consumer,
                                self.detector,
                                self.sinks,
                                self.counters,
                                max_records=s.kafka.fetch_max_records,
                            )
                        )
                    )
                if self.status_out is not None:
                    tasks.append(
                        group.create_task(
                            status_stage(
                                self.counters,
                                self.detector,
                                self.feeds,
                                self.status_out,
                                self.watch,
                            )
                        )
                    )
                if self.watch is not None:
                    tasks.append(group.create_task(watch_stage(self.watch, self.feeds)))
                if self.executor is not None:
                    tasks.append(group.create_task(self.executor.run()))
                await until()
                for task in tasks:
                    task.cancel()
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.flush()


def make_pipeline(
    settings: Settings,
    lots: pl.DataFrame,
    *,
    ingest: bool = True,
    detect: bool = True,
    feed_urls: Mapping[str, str] | None = None,
    status_out: TextIO | None = sys.stderr,
    stdout: IO[bytes] | None = None,
    ledger: Ledger | None = None,
) -> Pipeline:
    """Build (without starting) the pipeline for `run`, `ingest`, `detect` or `demo`.

    `feed_urls` (venue -> URL) points feeds elsewhere than `[[feeds]] url` (the demo's
    simulated venues).
    """
    bus = make_bus(settings.kafka.bus_config())
    assets = lots["asset"].unique().to_list()
    feeds = build_feeds(settings, assets, feed_urls) if ingest else []
    detector = build_detector(settings, lots) if detect else None
    if detect:  # `ledger` (the lots' own), or one because subscriptions or execution need it
        ledger = ledger or subscriptions_ledger(settings) or execution_ledger(settings)
    else:
        ledger = None
    store = ledger.alerts if ledger is not None else None
    sinks = build_sinks(settings, bus, stdout=stdout, alert_store=store) if detect else []
    execution = execution_stage(settings, ledger, detector)
    if execution is not None:
        sinks.append(execution[1])  # last: the alert is out everywhere before an order
    watch = FeedWatch(
        settings.prices.venue_stale_s,
        [f.venue for f in settings.feeds],
        board=detector.prices if detector is not None else None,
        assets=assets,
    )
    return Pipeline(
        settings,
        bus,
        feeds,
        detector,
        sinks,
        status_out=status_out,
        watch=watch,
        ledger=ledger,
        executor=execution[0] if execution is not None else None,
    )


async def replay(
    settings: Settings,
    lots: pl.DataFrame,
    ticks: Iterable[Tick],
    sinks: Sequence[AlertSink],
    *,
    ledger: Ledger | None = None,
) -> Detector:
    """Event-time replay: every tick through the Detector in file order, no wall clock.

    With an open `ledger` and `[execution] mode = "paper"`, each alert is executed before
    the next tick (inline), so a paper replay is as deterministic as its alerts.
    """
    detector = build_detector(settings, lots, event_time=True)
    execution = execution_stage(settings, ledger, detector, inline=True)
    sinks = [*sinks, execution[1]] if execution is not None else list(sinks)
    for sink in sinks:
        await sink.start()
    if execution is not None:
        await execution[0].start()
        await execution[0].recover()
    try:
        for tick in ticks:
            alerts = detector.on_tick(tick)
            if alerts:
                batch = [(a, encode_alert(a)) for a in alerts]
                for sink in sinks:
                    await sink.send(batch)
    finally:
        for sink in sinks:
            await sink.stop()
        if execution is not None:
            await execution[0].stop()
    return detector
