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
import itertools
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, TextIO

import polars as pl

from monitor import heap, metrics
from monitor import status as status_view
from monitor.alerts.channels import subscription_sinks, subscriptions_ledger
from monitor.alerts.console import ConsoleSink
from monitor.alerts.interface import AlertSink
from monitor.alerts.jsonl import JsonLinesSink
from monitor.alerts.kafka import BusSink
from monitor.alerts.recording import RecordingSink
from monitor.alerts.schema import encode_alert
from monitor.alerts.store import AlertStore
from monitor.detect import Detector, build_detector
from monitor.execute.assembly import execution_ledger, execution_stage
from monitor.execute.executor import Executor
from monitor.feeds import build_feed_configs
from monitor.health import HealthCheck, Observation
from monitor.ledger.ledger import Ledger
from monitor.prices.health import FeedWatch
from monitor.settings import Settings
from monitor.stages import (
    Counters,
    detect_stage,
    emit,
    figures_stage,
    health_stage,
    ingest_stage,
    save_state,
    status_stage,
    troubles,
    watch_stage,
)
from monitor.terminal import PLAIN, Palette, palette_for
from streams.bus.factory import make_bus
from streams.bus.interface import Bus, Consumer, Producer
from streams.feeds.interface import Feed
from streams.feeds.registry import make_feed
from streams.ticks import Tick

log = logging.getLogger(__name__)

WATCHED = frozenset({"venues_stale", "assets_unpriced"})  # health checks the watch words

TOPIC_CHECK_S = 10.0  # the bus topics checked again this often (and when Kafka is back)

__all__ = [
    "Counters",
    "Pipeline",
    "build_feeds",
    "build_sinks",
    "detect_stage",
    "emit",
    "ingest_stage",
    "make_pipeline",
    "replay",
]


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
    console: Palette | None = None,
) -> list[AlertSink]:
    """Alert sinks: with a ledger (`alert_store`) the alert is recorded first (and only
    alerts new to the ledger go further, see `emit`), then go the `[[webhooks]]` and the
    websocket subscribers (monitor/alerts/channels.py); then `[alerts]`: stdout, a file,
    the bus topic (when Kafka is set). With `console` (a person at a terminal), stdout
    gets readable lines in that palette instead of JSON."""
    sinks: list[AlertSink] = subscription_sinks(settings, alert_store)
    if settings.alerts.stdout:
        sinks.append(ConsoleSink(palette=console) if console else JsonLinesSink(stream=stdout))
    if settings.alerts.file:
        sinks.append(JsonLinesSink(settings.alerts.file))
    if bus is not None and settings.alerts.kafka and settings.kafka.bootstrap_servers:
        sinks.append(BusSink(bus.producer(), settings.kafka.alerts_topic))
    return sinks


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
    console: Palette | None = None  # a person at a terminal: readable alerts, coloured status
    role: str = "run"  # run | ingest | detect | demo: what /status reports
    check: HealthCheck | None = None  # judged every second while running (health_stage)
    _producer: Producer | None = field(default=None, init=False, repr=False)
    _consumer: Consumer | None = field(default=None, init=False, repr=False)

    def health(self) -> dict[str, Any]:
        """/healthz: `ok` (200) unless a check of monitor.health fails, each failing one
        under `problems` with its reason; `degraded` while a venue is stale or an asset
        has no fresh venue (details under `prices`), which alone does not fail."""
        feeds = {f.status.venue: f.status.state.value for f in self.feeds}
        report = self.check.current() if self.check is not None else None
        out: dict[str, Any] = {
            **(report.as_json() if report is not None else {"ok": True, "problems": []}),
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

    def status(self) -> dict[str, Any]:
        """/status (monitor.status): what `harvest-monitor status` prints. Runs on the
        event loop (between ticks): it reads the book and the ledger."""
        s, c = self.settings, self.counters
        out = status_view.process_view(self.role, c.started_wall, c.started)
        prices = self.watch.snapshot([f.status for f in self.feeds]) if self.watch else {}
        out |= {
            "bus": self.bus.description,
            "venues": prices.get("venues", {}),
            "assets_without_fresh_venue": prices.get("assets_without_fresh_venue", []),
            "ticks": {"in": c.ticks_in, "detected": c.ticks_detected},
            "consumer_lag": status_view.consumer_lag(s.kafka.group_id)
            if self.detector is not None
            else None,
            "alerts": c.alerts,
            "last_alerts": status_view.alerts_view(c.recent),
            "held": status_view.held_view(self.held()),
            "problems": self.problems(),
            "health": self.check.current().as_json() if self.check is not None else None,
        }
        if self.detector is not None:
            out |= status_view.book_view(self.detector, int(time.time() * 1000))
        halted = self.executor.desk.guard.kill_switch() if self.executor is not None else ""
        sold = None
        if self.executor is not None and self.ledger is not None:
            day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            sold = self.ledger.intents.sell_notional_since(day)
        out["execution"] = status_view.execution_view(s.execution, halted, sold)
        return out

    def held(self) -> list[tuple[str, str]]:
        """(account/wallet/asset, why) of the groups whose alerts are held back (none are
        held by this version: the hook /status and the status line read)."""
        return []

    def problems(self) -> list[str]:
        """What is wrong now, in words (the status line's `attention:` part): the feed
        watch's stale venues and unpriced assets, the other failing /healthz checks,
        held groups and the kill switch."""
        halted = self.executor.desk.guard.kill_switch() if self.executor is not None else ""
        held = [f"{group} ({why})" for group, why in self.held()]
        report = self.check.current() if self.check is not None else None
        failing = [
            p.reason
            for p in (report.problems if report is not None else ())
            if p.check not in WATCHED  # said by the watch in its own words
        ]
        feeds = [f.status for f in self.feeds]
        return [*troubles(self.watch, kill_switch=halted, held=held, feeds=feeds), *failing]

    async def observe(self) -> Observation:
        """What the health check judges: counters, feeds, the bus clients, the watch."""
        watch = self.watch
        consumer = self._consumer
        return Observation(
            now=time.monotonic(),
            ingest=bool(self.feeds),
            detect=self.detector is not None,
            ticks_in=self.counters.ticks_in,
            ticks_detected=self.counters.ticks_detected,
            feeds={f.status.venue: f.status.state.value for f in self.feeds},
            producer=self._producer.status() if self._producer is not None else None,
            consumer=await consumer.progress() if consumer is not None else None,
            venues=list(watch.venues) if watch is not None else [],
            stale_venues=watch.stale if watch is not None else [],
            assets=len(watch.assets) if watch is not None and watch.board is not None else 0,
            unpriced=list(watch.excluded) if watch is not None else [],
        )

    async def run(self, until: Callable[[], Awaitable[None]]) -> None:
        """Run the stages until `until()` returns, then stop everything in order."""
        s = self.settings
        await self.bus.ensure_topics([s.kafka.ticks_topic, s.kafka.alerts_topic])
        server = (
            metrics.MetricsServer(s.metrics.host, s.metrics.port, self.health, self.status)
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
                    await self._restore_state(self.ledger, self.detector)
                    stack.push_async_callback(self._save_state, self.detector)
                for sink in self.sinks:
                    await sink.start()
                    stack.push_async_callback(sink.stop)
                if self.executor is not None:
                    await self.executor.start()
                    stack.push_async_callback(self.executor.stop)
            for feed in self.feeds:
                await feed.start()
                stack.push_async_callback(feed.stop)
            heap.settle()  # the book and clients are built: no 200 ms full collections later
            try:
                await self._supervise(until, producer, consumer)
            finally:
                heap.release()

    @staticmethod
    async def _restore_state(ledger: Ledger, detector: Detector) -> None:
        """Each open lot's alert state as the ledger kept it, before the first tick."""
        state = await asyncio.to_thread(ledger.alerts.lot_state)
        restored = detector.restore_state(state)
        log.info("lot alert state restored", extra={"lots": restored})

    async def _save_state(self, detector: Detector) -> None:
        """At stop: the lot alert state that changed since the last write."""
        save_state(self.sinks, detector)

    async def _supervise(
        self,
        until: Callable[[], Awaitable[None]],
        producer: Producer | None,
        consumer: Consumer | None,
    ) -> None:
        s = self.settings
        tasks: list[asyncio.Task[None]] = []
        self._producer, self._consumer = producer, consumer
        if self.check is None:
            self.check = HealthCheck(s.health.rules())
        topics = [s.kafka.ticks_topic, s.kafka.alerts_topic]
        try:
            async with asyncio.TaskGroup() as group:
                tasks.append(group.create_task(self.bus.watch_topics(topics, TOPIC_CHECK_S)))
                tasks.append(group.create_task(health_stage(self.check, self.observe)))
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
                                self.problems,
                                palette_for(self.status_out) if self.console else PLAIN,
                            )
                        )
                    )
                if self.watch is not None:
                    tasks.append(group.create_task(watch_stage(self.watch, self.feeds)))
                if self.detector is not None:
                    tasks.append(group.create_task(figures_stage(self.detector, self.ledger)))
                if self.executor is not None:
                    tasks.append(group.create_task(self.executor.run()))
                if self.ledger is not None and self.ledger.writer is not None:
                    # the writer lock's heartbeat: losing the lock stops the process
                    tasks.append(group.create_task(self.ledger.writer.hold()))
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
    console: Palette | None = None,
    role: str | None = None,
) -> Pipeline:
    """Build (without starting) the pipeline for `run`, `ingest`, `detect` or `demo`.

    `feed_urls` (venue -> URL) points feeds elsewhere than `[[feeds]] url` (the demo's
    simulated venues); `console` prints alerts as readable lines (see `build_sinks`);
    `role` is what /status reports (default: run, ingest or detect by the halves run).
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
    sinks = (
        build_sinks(settings, bus, stdout=stdout, alert_store=store, console=console)
        if detect
        else []
    )
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
        console=console,
        role=role or ("run" if ingest and detect else "ingest" if ingest else "detect"),
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

    With an open `ledger` the replay goes on from the ledger's state, as the daemon does
    after a restart: each lot's alert state is restored first, each alert is recorded with
    the lot state it changed (an alert the ledger already has goes to no sink again), and
    the rest of the state is written at the end; so replaying a file in two parts on one
    ledger gives the alerts of one replay of the whole. With `[execution] mode = "paper"`
    each alert is also executed before the next tick (inline), so a paper replay is as
    deterministic as its alerts; the executor's time is the ticks' (rebuys fall due at
    the first tick of their day, at its price), never the wall clock.
    """
    stream = iter(ticks)
    first = next(stream, None)  # the book holds the lots acquired by the first tick's time
    detector = build_detector(
        settings, lots, event_time=True, as_of_ms=first.ts_ms if first is not None else None
    )
    recorder = None
    if ledger is not None:
        recorder = RecordingSink(ledger.alerts)
        detector.restore_state(ledger.alerts.lot_state())
    execution = execution_stage(settings, ledger, detector, inline=True)
    sinks = [*sinks, execution[1]] if execution is not None else list(sinks)
    for sink in sinks:
        await sink.start()
    if execution is not None:
        await execution[0].start()
        await execution[0].recover()
    writer = ledger.writer if ledger is not None else None
    try:
        day = None
        for tick in itertools.chain([first] if first is not None else [], stream):
            if writer is not None:
                writer.renew_due()  # a long replay keeps the ledger's writer lock
            alerts = detector.on_tick(tick)
            if execution is not None and tick.ts_ms // 86_400_000 != day:
                day = tick.ts_ms // 86_400_000  # a new day in event time: rebuys now due
                await execution[0].at_event_time(tick.ts_ms)
            if alerts:
                batch = [(a, encode_alert(a)) for a in alerts]
                if recorder is not None:
                    batch = recorder.record(batch, detector.take_state())
                for sink in sinks if batch else ():
                    await sink.send(batch)
        if recorder is not None:
            save_state([recorder], detector)
    finally:
        for sink in sinks:
            await sink.stop()
        if execution is not None:
            await execution[0].stop()
    return detector
