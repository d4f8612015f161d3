"""Counting and timing wrappers around the real stages' parts.

The bench runs the monitor's own stages (`monitor.app.ingest_stage`, `detect_stage`,
`Pipeline`) and sees them only through their interfaces: a producer and a consumer that
count what passes and stop the clock at a goal, a detector that timestamps each decision,
and a sink that timestamps each alert's emission. Nothing inside the stages is patched.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import IO, Any

from monitor.alerts.interface import AlertSink
from monitor.alerts.schema import Alert
from monitor.detect import Detector
from streams.bus.interface import Consumer, ConsumerProgress, Producer, ProducerStatus, Record
from streams.ticks import Tick


def null_writer() -> IO[bytes]:
    """A real file that discards what is written (the null writer for alert sinks)."""
    return open(os.devnull, "wb")


class Stopwatch:
    """Counts items towards a goal; `elapsed_s` runs from `start()` to the goal."""

    def __init__(self, goal: int) -> None:
        self.goal = goal
        self.count = 0
        self.started_ns = 0
        self.finished_ns = 0
        self.reached = asyncio.Event()

    def start(self) -> None:
        if not self.started_ns:
            self.started_ns = time.perf_counter_ns()

    def add(self, n: int) -> None:
        self.count += n
        if self.count >= self.goal and not self.reached.is_set():
            self.finished_ns = time.perf_counter_ns()
            self.reached.set()

    @property
    def elapsed_s(self) -> float:
        end = self.finished_ns or time.perf_counter_ns()
        return max(end - self.started_ns, 1) / 1e9


async def reach(watch: Stopwatch, stages: Sequence[asyncio.Task[None]], timeout_s: float) -> None:
    """Wait until `watch` reaches its goal; a stage that ends first raises its error here."""
    waiter = asyncio.ensure_future(watch.reached.wait())
    try:
        done, _ = await asyncio.wait(
            [waiter, *stages], timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        waiter.cancel()
    if not done:
        raise TimeoutError(
            f"only {watch.count} of {watch.goal} ticks went through in {timeout_s:.0f} s"
        )
    for task in done:
        if task is not waiter:
            task.result()  # the stage's own error, if it failed
            raise RuntimeError("a stage ended before the bench's goal was reached")


class MeteredProducer:
    """A `Producer` that counts published records; the clock starts at the first publish.

    The records of that first call were received before the clock started, so they are
    not counted: `watch.count` is what arrived and was published while timed.
    """

    def __init__(self, inner: Producer, goal: int) -> None:
        self._inner = inner
        self.watch = Stopwatch(goal)
        self._first = True

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def flush(self) -> None:
        await self._inner.flush()

    def status(self) -> ProducerStatus:
        return self._inner.status()

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        await self.publish_many(topic, [(key, value)])

    async def publish_many(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        first, self._first = self._first, False
        if first:
            self.watch.start()
        await self._inner.publish_many(topic, items)
        if not first:
            self.watch.add(len(items))


class MeteredConsumer:
    """A `Consumer` whose clock runs from the first `get_batch` call to the commit after
    the goal-th record (so the goal counts records processed, not just fetched)."""

    def __init__(self, inner: Consumer, goal: int) -> None:
        self._inner = inner
        self.watch = Stopwatch(goal)
        self._returned = 0

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def get_batch(self, max_records: int, timeout_s: float) -> list[Record]:
        self.watch.start()
        batch = await self._inner.get_batch(max_records, timeout_s)
        self._returned += len(batch)
        return batch

    async def commit(self) -> None:
        await self._inner.commit()
        self.watch.add(self._returned - self.watch.count)

    async def progress(self) -> ConsumerProgress:
        return await self._inner.progress()


class TimedDetector:
    """Wraps a `Detector`: counts ticks and alerts, and for every tick received inside
    `window` (recv_ns range) the time from its `recv_ns` to the detection decision; it
    remembers which tick each of those alerts came from, for `TimedSink`."""

    def __init__(self, inner: Detector) -> None:
        self._inner = inner
        self.ticks = 0
        self.alerts = 0
        self.alerting_ticks = 0
        self.window = (0, 0)  # [first, last) recv_ns measured; (0, 0): none
        self.decisions_ns: list[int] = []
        self.window_alerts = 0
        self.window_alerting_ticks = 0
        self.origin: dict[str, int] = {}  # alert_id -> recv_ns of the tick that caused it
        self.first_tick = asyncio.Event()
        self.first_alert = asyncio.Event()

    def on_tick(self, tick: Tick) -> list[Alert]:
        alerts = self._inner.on_tick(tick)
        now = time.time_ns()
        if not self.ticks:
            self.first_tick.set()
        self.ticks += 1
        if alerts:
            self.alerting_ticks += 1
            self.alerts += len(alerts)
            self.first_alert.set()
        first, last = self.window
        if first <= tick.recv_ns < last:
            self.decisions_ns.append(now - tick.recv_ns)
            if alerts:
                self.window_alerting_ticks += 1
                self.window_alerts += len(alerts)
                for alert in alerts:
                    self.origin[alert.alert_id] = tick.recv_ns
        return alerts

    def __getattr__(self, name: str) -> Any:  # the rest of the Detector's surface
        return getattr(self._inner, name)


class TimedSink:
    """Wraps an `AlertSink`: the time from each alert's tick `recv_ns` to the end of its
    emission (the sink's `send` returned), for alerts the TimedDetector saw in its window."""

    def __init__(self, inner: AlertSink, detector: TimedDetector) -> None:
        self.name = inner.name
        self._inner = inner
        self._detector = detector
        self.emissions_ns: list[int] = []

    async def start(self) -> None:
        await self._inner.start()

    async def stop(self) -> None:
        await self._inner.stop()

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        await self._inner.send(alerts)
        now = time.time_ns()
        origin = self._detector.origin
        for alert, _ in alerts:
            recv_ns = origin.pop(alert.alert_id, None)
            if recv_ns is not None:
                self.emissions_ns.append(now - recv_ns)
