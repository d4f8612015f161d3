"""Find what stalls the hot path: the bench's latency section with every garbage
collection and every slow event-loop callback recorded (docs/performance.md, "Stalls").

    .venv/bin/python scripts/stall_profile.py [LOTS] [WINDOW_S] [RATE] [kafka]

Runs `monitor.bench.latency.measure_latency` through the in-process bus (the embedded
default; with `kafka`, through the local tansu broker with the bench's settings) at
RATE ticks/s (default 5,000) with LOTS bench lots (default 1,000,000) for WINDOW_S
seconds (default 60) after a 3 s warm-up. Prints the latency figures, each
generation-2 collection (when, wall ms, this thread's CPU ms, objects it walked, the
most common types among them), and every loop callback that held the loop over 50 ms
with its wall and CPU time: wall far above CPU means the process was waiting for a
core (a loaded host), not working. A profiling aid, not part of the product.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import contextlib
import gc
import sys
import time
import uuid
from collections import Counter
from typing import Any

from monitor.bench.latency import measure_latency
from monitor.bench.lots import LotPlan, bench_settings, design_lots
from monitor.bench.market import MarketSpec, steps_for
from monitor.bench.report import LatencyResult
from monitor.bench.runner import LOCAL_FETCH_MAX_WAIT_MS
from streams.bus.broker import LocalBroker, find_broker
from streams.bus.kafka import LOCAL_BROKER_GROUP_TIMING

SLOW_MS = 50.0
_collections: list[tuple[float, float, float, int, list[tuple[str, int]]]] = []
_slow: list[tuple[float, float, float, str]] = []
_began: dict[str, Any] = {}
_original_run = asyncio.events.Handle._run


def _on_collect(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        objects = [o for g in (0, 1, 2) for o in gc.get_objects(generation=g)]
        _began["types"] = Counter(type(o).__qualname__ for o in objects).most_common(4)
        _began["walked"] = len(objects)
        del objects
        _began["cpu"], _began["wall"] = time.thread_time_ns(), time.perf_counter_ns()
    else:
        wall = (time.perf_counter_ns() - _began["wall"]) / 1e6
        cpu = (time.thread_time_ns() - _began["cpu"]) / 1e6
        _collections.append((time.monotonic(), wall, cpu, _began["walked"], _began["types"]))


def _timed_run(self: asyncio.events.Handle) -> None:
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    _original_run(self)
    wall_ms = (time.perf_counter_ns() - wall) / 1e6
    if wall_ms > SLOW_MS:
        owner = getattr(self._callback, "__self__", None)  # type: ignore[attr-defined]
        name = repr(self)[:100]
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            frame = getattr(coro, "cr_frame", None)
            where = f" @ {frame.f_code.co_filename}:{frame.f_lineno}" if frame else ""
            name = f"task {getattr(coro, '__qualname__', coro)}{where}"
        _slow.append((time.monotonic(), wall_ms, (time.thread_time_ns() - cpu) / 1e6, name))


async def _measure(
    lots: int, window: float, rate: float, kafka: bool
) -> tuple[LatencyResult, float]:
    warm = 3.0
    spec = MarketSpec(assets=24, seed=7)
    plan = LotPlan(lots, spec, steps_for(int(rate * (warm + window + 30)), spec.assets))
    async with contextlib.AsyncExitStack() as stack:
        overrides: dict[str, Any] = {}
        if kafka:
            broker = await stack.enter_async_context(LocalBroker(find_broker()))
            run = uuid.uuid4().hex[:8]
            overrides = {
                "kafka.bootstrap_servers": broker.bootstrap,
                "kafka.ticks_topic": f"hm.stalls.{run}.ticks",
                "kafka.alerts_topic": f"hm.stalls.{run}.alerts",
                "kafka.group_id": f"hm-stalls-{run}",
                "kafka.session_timeout_ms": LOCAL_BROKER_GROUP_TIMING.session_timeout_ms,
                "kafka.heartbeat_interval_ms": LOCAL_BROKER_GROUP_TIMING.heartbeat_interval_ms,
                "kafka.fetch_max_wait_ms": LOCAL_FETCH_MAX_WAIT_MS,
            }
        settings = bench_settings(overrides)
        designed = design_lots(plan, settings)
        asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
        gc.callbacks.append(_on_collect)
        started = time.monotonic()
        result = await measure_latency(settings, spec, designed.frame, rate, window, warm)
        return result, started


def main() -> None:
    lots = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 5_000.0
    kafka = len(sys.argv) > 4 and sys.argv[4] == "kafka"
    result, started = asyncio.run(_measure(lots, window, rate, kafka))
    gc.callbacks.remove(_on_collect)
    print(f"{lots:,} lots, {rate:,.0f} ticks/s, {result.window_s:.0f} s window, {result.bus} bus")
    print(f"tick-to-decision p50/p99/max: {result.decision.text() if result.decision else '-'}")
    print(f"tick-to-alert p50/p99/max:    {result.alert.text() if result.alert else '-'}")
    if result.alert_histogram is not None:
        print("tick-to-alert histogram:", result.alert_histogram.buckets())
    for p in result.pauses:
        print(f"in the window, gen {p.generation}: {p.count} collections, max {p.max_ms:.1f} ms")
    print("generation-2 collections (s from start, wall ms, cpu ms, objects walked, types):")
    for at, wall, cpu, walked, types in _collections:
        print(f"  +{at - started:6.1f}  {wall:7.1f}  {cpu:7.1f}  {walked:>9,}  {types}")
    print(f"loop callbacks over {SLOW_MS:.0f} ms (s from start, wall ms, cpu ms, what):")
    for at, wall, cpu, name in _slow:
        print(f"  +{at - started:6.1f}  {wall:7.1f}  {cpu:7.1f}  {name}")


if __name__ == "__main__":
    main()
