"""Detect: Kafka -> prices -> book -> detection -> alerts, sustained, with N open lots.

The topic already holds the tick tape (the produce ceiling wrote it), so detection
always has a backlog: the figure is how fast `monitor.app.detect_stage` drains it with
the detector `monitor.detect.build_detector` makes and a JSON-lines sink writing to a
null device. The clock runs from the first fetch to the commit after the last tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import cast

import polars as pl

from monitor.alerts.jsonl import JsonLinesSink
from monitor.app import Counters, detect_stage
from monitor.bench.probes import MeteredConsumer, TimedDetector, null_writer, reach
from monitor.bench.report import DetectResult, Throughput
from monitor.detect import Detector, build_detector
from monitor.settings import Settings
from streams.bus.interface import Bus
from streams.ticks import Tick


async def measure_detect(
    settings: Settings,
    bus: Bus,
    topic: str,
    count: int,
    lots: pl.DataFrame,
    hot_lots: int,
    warm: Sequence[Tick],
) -> DetectResult:
    """Ticks/s through detection of the first `count` ticks of `topic`.

    The detector first sees `warm` (the tape's first ticks) untimed: each asset's index
    and whatever else is built on first use (e.g. on the first alert) are start costs,
    reported with the memory figures, not part of the sustained rate.
    """
    inner = build_detector(settings, lots)
    for tick in warm:
        inner.on_tick(tick)
    detector = TimedDetector(inner)
    group = f"bench-detect-{uuid.uuid4().hex[:8]}"
    consumer = MeteredConsumer(bus.consumer([topic], group, from_beginning=True), count)
    with null_writer() as out:
        sink = JsonLinesSink(stream=out)
        await sink.start()
        await consumer.start()
        task = asyncio.create_task(
            detect_stage(
                consumer,
                cast(Detector, detector),
                [sink],
                Counters(),
                max_records=settings.kafka.fetch_max_records,
            )
        )
        try:
            await reach(consumer.watch, [task], max(120.0, count / 200))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()
            await sink.stop()
    watch = consumer.watch
    return DetectResult(
        throughput=Throughput(watch.count, watch.elapsed_s),
        lots=lots.height,
        hot_lots=hot_lots,
        alerts=detector.alerts,
        alerting_ticks=detector.alerting_ticks,
    )
