"""Latency at a fixed offered rate through the whole path, as `harvest-monitor run` wires it.

The simulated exchange (a child process) prints one trade per asset every
`assets / rate` seconds; `monitor.app.make_pipeline` builds the feed, the Kafka bus, the
detector over the bench's lots and the pipeline that `run` supervises. The bench only
wraps the detector and the sink (`probes`): tick-to-decision is measured for every tick
received in the window (from the feed's `recv_ns` to the detector's answer), and
tick-to-alert for the ticks that caused an alert (to the end of the sink's write). Hot
lots are spread over the path's range so about `lots.ALERT_SHARE` of ticks alert.

A warm-up (the first ticks build each asset's trigger index, the first alert whatever
is built on first use, the consumer group settles) is left out; after the window
closes, ticks still in flight get a drain period to come out, and those that do not are
missing from the figures (the achieved rate then falls short of the offered one, which
the report shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import polars as pl

from monitor.alerts.jsonl import JsonLinesSink
from monitor.app import make_pipeline
from monitor.bench.exchange import ChildExchange
from monitor.bench.market import VENUE, MarketSpec
from monitor.bench.pauses import CollectorPauses
from monitor.bench.probes import TimedDetector, TimedSink, null_writer
from monitor.bench.report import Histogram, LatencyResult, Spread
from monitor.detect import Detector
from monitor.settings import Settings

FIRST_TICK_TIMEOUT_S = 120.0
FIRST_ALERT_WAIT_S = 30.0
DRAIN_S = 1.0


async def measure_latency(
    settings: Settings,
    spec: MarketSpec,
    lots: pl.DataFrame,
    rate: float,
    seconds: float,
    warmup_s: float,
) -> LatencyResult:
    """Offer `rate` ticks/s for `warmup_s` + `seconds`; measure the last `seconds`.

    The bus is the one `settings` name (`[kafka] bootstrap_servers` empty: in-process);
    every garbage collection in the window is recorded with its pause.
    """
    interval_ms = 1000.0 * spec.assets / rate
    pauses = CollectorPauses()
    with null_writer() as out:
        async with ChildExchange(spec, interval_ms) as url:
            pipeline = make_pipeline(settings, lots, feed_urls={VENUE: url}, status_out=None)
            if pipeline.detector is None:
                raise RuntimeError("make_pipeline built no detector")
            timed = TimedDetector(pipeline.detector)
            sink = TimedSink(JsonLinesSink(stream=out), timed)
            pipeline.detector = cast(Detector, timed)
            pipeline.sinks = [sink]
            window: list[int] = []

            async def until() -> None:
                async with asyncio.timeout(FIRST_TICK_TIMEOUT_S):
                    await timed.first_tick.wait()
                with contextlib.suppress(TimeoutError):  # costs built on first use are paid
                    await asyncio.wait_for(timed.first_alert.wait(), FIRST_ALERT_WAIT_S)
                await asyncio.sleep(warmup_s)
                first = time.time_ns()
                ingested = pipeline.counters.ticks_in
                timed.window = (first, 2**63 - 1)
                pauses.recording = True
                await asyncio.sleep(seconds)
                last = time.time_ns()
                timed.window = (first, last)
                pauses.recording = False
                window.extend([first, last, pipeline.counters.ticks_in - ingested])
                await asyncio.sleep(DRAIN_S)

            pauses.install()
            try:
                await pipeline.run(until)
            finally:
                pauses.remove()
    first, last, ingested = window
    return LatencyResult(
        offered_per_s=rate,
        window_s=(last - first) / 1e9,
        ingested=ingested,
        decision=Spread.of_ns(timed.decisions_ns),
        alert=Spread.of_ns(sink.emissions_ns),
        alerts=timed.window_alerts,
        alerting_ticks=timed.window_alerting_ticks,
        bus="kafka" if settings.kafka.bootstrap_servers.strip() else "in-process",
        alert_histogram=Histogram.of_ns(sink.emissions_ns),
        decision_histogram=Histogram.of_ns(timed.decisions_ns),
        pauses=tuple(pauses.summary()),
    )
