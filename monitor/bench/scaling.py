"""Scaling and memory: detection cost per tick, RSS per lot and rebuild time, per lot count.

Start (one fresh spawned process per size, so its resident memory is its own): the lots
are designed and written to a fresh SQLite ledger (`monitor.ledger`; neither is timed),
then the start of a monitor is timed: the open lots read back (`Ledger.open_lots`) and
the book and its trigger index built (`build_detector`, then the first tick of each
asset, which builds that asset's index). RSS is read before and after; the difference
over the lot count is the resident cost of an open lot. Above `LEDGER_MAX_LOTS` (the 10M
of `--big`) writing the ledger would take minutes: the book is built from the lot frame
and the report says so.

Then the ticks up to the first alert go through, and that alert's tick is timed on its
own: structures built on first use (the acquisitions log) make it a start cost too.

Cost (one more fresh process for all sizes): a book per size, warmed up with the same
`WARM_UP_TICKS` (indexes built, first alerts out), then the rest of the tape fed to each
in turn, `CHUNK` ticks at a time, every `Detector.on_tick` timed. Interleaving puts the
noise of a shared machine on every size alike. The hot lots are the same at every
size, so every size fires the same alerts and the ratio of costs is the index's.
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
import numpy.typing as npt

from monitor.bench.lots import LotPlan, bench_settings, design_lots
from monitor.bench.market import make_tape
from monitor.bench.memory import rss_bytes
from monitor.bench.report import SizeResult
from monitor.detect import build_detector
from monitor.ledger.ledger import Ledger
from monitor.settings import Settings
from streams.ticks import Tick

WARM_UP_LOTS = 1_000
WARM_UP_TICKS = 2_000  # enough for a few alerts: the first one in a process costs more
CHUNK = 500  # ticks fed to one book before the next book's turn
LEDGER_MAX_LOTS = 1_000_000
FROM_LEDGER = "SQLite ledger: Ledger.open_lots + build_detector + first tick per asset"
FROM_FRAME = "lot frame in memory (no ledger above 1M lots): build_detector + first tick per asset"


@dataclass(frozen=True, slots=True)
class _Start:
    lots: int
    hot: int
    design_s: float
    rebuild_s: float
    ledger_read_s: float | None
    first_alert_s: float | None
    rss_bytes_per_lot: float | None
    frame_bytes_per_lot: float


@dataclass(frozen=True, slots=True)
class _Cost:
    ticks: int
    mean_us: float
    p50_us: float
    p99_us: float
    quiet_mean_us: float  # over the ticks that raised no alert
    alerts: int
    alerting: int


def measure_start(plan: LotPlan, overrides: dict[str, Any]) -> _Start:
    """In a fresh process: time a start of `plan.count` lots; RSS before and after."""
    settings = bench_settings(overrides)
    warm = make_tape(plan.market, WARM_UP_TICKS)
    _warm_up(plan, settings, warm)
    started = time.perf_counter()
    designed = design_lots(plan, settings)
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
            if ledger is not None:  # as a start does: the lots' alert state (none yet here)
                detector.restore_state(ledger.alerts.lot_state())
            for tick in warm[: plan.market.assets]:
                detector.on_tick(tick)
            rebuild_s = time.perf_counter() - started
            after = rss_bytes()
        finally:
            if ledger is not None:
                ledger.close()
    first_alert_s = None
    for tick in warm[plan.market.assets :]:  # what the first alert after a start costs
        started = time.perf_counter()
        if detector.on_tick(tick):
            first_alert_s = time.perf_counter() - started
            break
    return _Start(
        lots=lots,
        hot=designed.hot,
        design_s=design_s,
        rebuild_s=rebuild_s,
        ledger_read_s=None if ledger is None else read_s,
        first_alert_s=first_alert_s,
        rss_bytes_per_lot=None if before is None or after is None else (after - before) / lots,
        frame_bytes_per_lot=designed.frame.estimated_size() / lots,
    )


def measure_costs(plans: Sequence[LotPlan], ticks: int, overrides: dict[str, Any]) -> list[_Cost]:
    """In a fresh process: every plan's book, the same tape through each, interleaved."""
    settings = bench_settings(overrides)
    spec = plans[0].market
    tape = make_tape(spec, WARM_UP_TICKS + ticks)
    warm, timed = tape[:WARM_UP_TICKS], tape[WARM_UP_TICKS:]
    _warm_up(plans[0], settings, warm)
    detectors = [build_detector(settings, design_lots(p, settings).frame) for p in plans]
    for detector in detectors:  # indexes built, first alerts out: the steady state is timed
        for tick in warm:
            detector.on_tick(tick)
    costs = np.empty((len(plans), len(timed)), dtype=np.int64)
    alerts = np.zeros((len(plans), len(timed)), dtype=np.int64)
    clock = time.perf_counter_ns
    for at in range(0, len(timed), CHUNK):
        for row, detector in enumerate(detectors):
            on_tick = detector.on_tick
            for i in range(at, min(at + CHUNK, len(timed))):
                t0 = clock()
                out = on_tick(timed[i])
                costs[row, i] = clock() - t0
                alerts[row, i] = len(out)
    return [_cost(costs[row] / 1e3, alerts[row]) for row in range(len(plans))]


def _cost(us: npt.NDArray[np.float64], alerts: npt.NDArray[np.int64]) -> _Cost:
    if not len(us):
        return _Cost(0, 0.0, 0.0, 0.0, 0.0, 0, 0)
    p50, p99 = np.percentile(us, [50, 99])
    quiet = us[alerts == 0]
    return _Cost(
        ticks=len(us),
        mean_us=float(us.mean()),
        p50_us=float(p50),
        p99_us=float(p99),
        quiet_mean_us=float(quiet.mean()) if len(quiet) else 0.0,
        alerts=int(alerts.sum()),
        alerting=int((alerts > 0).sum()),
    )


def _warm_up(plan: LotPlan, settings: Settings, ticks: list[Tick]) -> None:
    """Run everything once on a few lots, so lazy one-time costs (polars' thread pool and
    first queries, metric children, imports) are paid before anything is measured."""
    small = LotPlan(WARM_UP_LOTS, plan.market, plan.steps, plan.today, plan.seed)
    detector = build_detector(settings, design_lots(small, settings).frame)
    for tick in ticks:
        detector.on_tick(tick)


async def measure_sizes(
    plans: Sequence[LotPlan],
    ticks: int,
    overrides: dict[str, Any],
    progress: Callable[[str], None],
) -> list[SizeResult]:
    """A start per size (each in a fresh process), then the costs of all (one more)."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    starts: list[_Start] = []
    for plan in plans:
        progress(f"memory: start of {plan.count:,} lots (fresh process)")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            start = await loop.run_in_executor(pool, measure_start, plan, overrides)
        progress(
            f"memory: {start.lots:,} lots: {start.rebuild_s:.2f} s, "
            f"{start.rss_bytes_per_lot or 0:,.0f} B/lot"
        )
        starts.append(start)
    sizes = ", ".join(f"{p.count:,}" for p in plans)
    progress(f"scaling: {ticks:,} ticks through books of {sizes} lots, interleaved")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        costs = await loop.run_in_executor(pool, measure_costs, plans, ticks, overrides)
    return [
        SizeResult(
            lots=start.lots,
            hot_lots=start.hot,
            ticks=cost.ticks,
            cost_mean_us=cost.mean_us,
            cost_p50_us=cost.p50_us,
            cost_p99_us=cost.p99_us,
            cost_quiet_mean_us=cost.quiet_mean_us,
            alerts=cost.alerts,
            alerting_ticks=cost.alerting,
            design_s=start.design_s,
            rebuild_s=start.rebuild_s,
            ledger_read_s=start.ledger_read_s,
            first_alert_s=start.first_alert_s,
            rebuild_source=FROM_LEDGER if start.ledger_read_s is not None else FROM_FRAME,
            rss_bytes_per_lot=start.rss_bytes_per_lot,
            frame_bytes_per_lot=start.frame_bytes_per_lot,
        )
        for start, cost in zip(starts, costs, strict=True)
    ]
