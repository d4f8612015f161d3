"""Ingest: simulated exchange -> feed -> Kafka, sustained, with the monitor's own stage.

The feeds come from `monitor.app.build_feeds` (the configured venue client pointed at
the simulator), the producer from the bus, and the loop is `monitor.app.ingest_stage`,
as `harvest-monitor ingest` runs them. The clock runs from the first publish to the
moment every counted tick is delivered (`flush`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from monitor.app import Counters, build_feeds, ingest_stage
from monitor.bench.exchange import ChildExchange
from monitor.bench.market import VENUE, MarketSpec
from monitor.bench.probes import MeteredProducer, reach
from monitor.bench.report import Throughput
from monitor.settings import Settings
from streams.bus.interface import Bus


async def measure_ingest(
    settings: Settings, bus: Bus, spec: MarketSpec, topic: str, count: int
) -> Throughput:
    """Ticks/s from the simulator (sending flat out) through the feed into `topic`."""
    producer = MeteredProducer(bus.producer(), count)
    async with ChildExchange(spec, tick_interval_ms=0) as url:
        feeds = build_feeds(settings, spec.bases(), {VENUE: url})
        await producer.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            for feed in feeds:
                await feed.start()
            counters = Counters()
            tasks = [
                asyncio.create_task(ingest_stage(feed, producer, topic, counters)) for feed in feeds
            ]
            await reach(producer.watch, tasks, max(120.0, count / 500))
            await _cancel(tasks)  # a flush waits for quiet: publishing must stop first
            await producer.flush()
            delivered_ns = time.perf_counter_ns()
        finally:
            await _cancel(tasks)
            for feed in feeds:
                await feed.stop()
            await producer.stop()
    watch = producer.watch
    return Throughput(watch.count, (delivered_ns - watch.started_ns) / 1e9)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
