"""Scaling and memory: detection cost per tick, RSS per lot and rebuild time, per lot count.

Each size runs in a fresh (spawned) process, so its resident memory is its own. The
lots are designed and written to a fresh SQLite ledger (`monitor.ledger`; neither is
timed), then the start of a monitor is timed: the open lots read back from the ledger
(`Ledger.open_lots`), the book and its trigger index built (`build_detector`, then the
first tick of each asset, which builds that asset's index). RSS is read before and
after that start; the difference over the lot count is the resident cost of an open lot.
Then every tick of the tape goes through `Detector.on_tick`, each timed. The hot lots
are the same at every size, so every size fires the same alerts and the ratio of costs
is the index's. Above `LEDGER_MAX_LOTS` (the 10M of `--big`), writing the ledger would
take minutes, so the book is built from the lot frame in memory and the report says so.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.bench.lots import LotPlan, bench_settings, design_lots
from monitor.bench.market import make_tape
from monitor.bench.memory import rss_bytes
from monitor.bench.report import SizeResult
from monitor.detect import build_detector, trigger_rules
from monitor.ledger.ledger import Ledger
from streams.ticks import Tick

WARM_UP_LOTS = 1_000
WARM_UP_TICKS = 2_000  # enough for a few alerts: the first one in a process costs more
LEDGER_MAX_LOTS = 1_000_000
FROM_LEDGER = "SQLite ledger: Ledger.open_lots + build_detector + first tick per asset"
FROM_FRAME = "lot frame in memory (no ledger above 1M lots): build_detector + first tick per asset"


@dataclass(frozen=True, slots=True)
class SizeJob:
    """One size to measure: the lots, how many ticks, the settings overrides."""

    plan: LotPlan
    ticks: int
    overrides: dict[str, Any]


def measure_size(job: SizeJob) -> SizeResult:
    """Run in a fresh process: start a book of `job.plan.count` lots and time ticks."""
    settings = bench_settings(job.overrides)
    spec = job.plan.market
    tape = make_tape(spec, job.ticks + spec.assets)
    first_step, timed = tape[: spec.assets], tape[spec.assets :]
    _warm_up(job, tape[:WARM_UP_TICKS])
    started = time.perf_counter()
    designed = design_lots(job.plan, trigger_rules(settings))
    design_s = time.perf_counter() - started
    lots = designed.frame.height
    with tempfile.TemporaryDirectory(prefix="hm-bench-") as scratch:
        ledger = None
        if lots <= LEDGER_MAX_LOTS:
            ledger = Ledger(Path(scratch) / "ledger.sqlite").open()
            ledger.import_frame(designed.frame, "bench")
        try:
            before = rss_bytes()
            started = time.perf_counter()
            frame = designed.frame if ledger is None else ledger.open_lots()
            read_s = time.perf_counter() - started
            detector = build_detector(settings, frame)
            for tick in first_step:
                detector.on_tick(tick)
            rebuild_s = time.perf_counter() - started
            after = rss_bytes()
        finally:
            if ledger is not None:
                ledger.close()
    costs = np.empty(len(timed), dtype=np.int64)
    alerts = alerting = 0
    clock, on_tick = time.perf_counter_ns, detector.on_tick
    for i, tick in enumerate(timed):
        t0 = clock()
        out = on_tick(tick)
        costs[i] = clock() - t0
        if out:
            alerting += 1
            alerts += len(out)
    us = costs / 1e3
    p50, p99 = np.percentile(us, [50, 99]) if len(us) else (0.0, 0.0)
    return SizeResult(
        lots=lots,
        hot_lots=designed.hot,
        ticks=len(timed),
        cost_mean_us=float(us.mean()) if len(us) else 0.0,
        cost_p50_us=float(p50),
        cost_p99_us=float(p99),
        alerts=alerts,
        alerting_ticks=alerting,
        design_s=design_s,
        rebuild_s=rebuild_s,
        ledger_read_s=None if ledger is None else read_s,
        rebuild_source=FROM_LEDGER if ledger is not None else FROM_FRAME,
        rss_bytes_per_lot=None if before is None or after is None else (after - before) / lots,
        frame_bytes_per_lot=designed.frame.estimated_size() / lots,
    )


def _warm_up(job: SizeJob, ticks: list[Tick]) -> None:
    """Run everything once on a few lots, so lazy one-time costs (polars' thread pool and
    first queries, metric children, imports) are paid before the baseline is read."""
    settings = bench_settings(job.overrides)
    plan = job.plan
    small = LotPlan(WARM_UP_LOTS, plan.market, plan.steps, plan.today, plan.seed)
    detector = build_detector(settings, design_lots(small, trigger_rules(settings)).frame)
    for tick in ticks:
        detector.on_tick(tick)


async def measure_sizes(
    jobs: Sequence[SizeJob], progress: Callable[[str], None]
) -> list[SizeResult]:
    """Each job in its own fresh process, one after the other."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    results: list[SizeResult] = []
    for job in jobs:
        progress(f"scaling: {job.plan.count:,} lots, {job.ticks:,} ticks (fresh process)")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            result = await loop.run_in_executor(pool, measure_size, job)
        progress(
            f"scaling: {result.lots:,} lots: {result.cost_mean_us:.2f} us/tick, "
            f"rebuild {result.rebuild_s:.2f} s"
        )
        results.append(result)
    return results
