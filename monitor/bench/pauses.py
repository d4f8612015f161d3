"""The cyclic garbage collector's pauses during a measured window, from `gc.callbacks`.

Each collection's generation, wall time and this thread's CPU time are recorded: on a
loaded host the wall time of a pause is its CPU time stretched by the other processes,
so both are kept (docs/performance.md, "Stalls").
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

GENERATIONS = (0, 1, 2)


@dataclass(frozen=True, slots=True)
class Pauses:
    """The collections of one generation: how many, the longest and the sum (ms)."""

    generation: int
    count: int
    max_ms: float
    total_ms: float
    max_cpu_ms: float

    def json(self) -> dict[str, float]:
        return {
            "generation": self.generation,
            "count": self.count,
            "max_ms": self.max_ms,
            "total_ms": self.total_ms,
            "max_cpu_ms": self.max_cpu_ms,
        }


class CollectorPauses:
    """Records every collection between `start()` and `stop()` (a `gc.callbacks` hook)."""

    def __init__(self) -> None:
        self._began_ns = 0
        self._began_cpu_ns = 0
        self.recording = False
        self.events: list[tuple[int, float, float]] = []  # generation, wall ms, cpu ms

    def _on_collect(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began_cpu_ns = time.thread_time_ns()
            self._began_ns = time.perf_counter_ns()
        elif self.recording and self._began_ns:
            wall = (time.perf_counter_ns() - self._began_ns) / 1e6
            cpu = (time.thread_time_ns() - self._began_cpu_ns) / 1e6
            self.events.append((int(info["generation"]), wall, cpu))

    def install(self) -> None:
        gc.callbacks.append(self._on_collect)

    def remove(self) -> None:
        if self._on_collect in gc.callbacks:
            gc.callbacks.remove(self._on_collect)

    def summary(self) -> list[Pauses]:
        """One `Pauses` per generation, in generation order."""
        out = []
        for generation in GENERATIONS:
            mine = [e for e in self.events if e[0] == generation]
            out.append(
                Pauses(
                    generation,
                    len(mine),
                    max((e[1] for e in mine), default=0.0),
                    sum(e[1] for e in mine),
                    max((e[2] for e in mine), default=0.0),
                )
            )
        return out
