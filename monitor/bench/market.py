"""The bench's market: which simulated assets, the tick tape they make, and the range it spans.

The tape is what the simulated exchange would send for the same `MarketSpec` (same
assets, seed and step size give the same prices step for step), built in-process so the
Kafka ceilings and the detect section can use the very payloads the feed would produce.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.simulator.prices import PricePaths, QuoteBoard
from streams.simulator.universe import UNIVERSE, SimAsset
from streams.ticks import Tick, encode_tick, tick_key

F64 = npt.NDArray[np.float64]

VENUE = "binance"
QUOTE = "USDT"
MAX_ASSETS = 1024  # streams one Binance connection carries


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """What fixes the simulated prices; child processes rebuild the market from it."""

    assets: int = 24
    seed: int = 7
    seconds_per_step: float = 60.0
    volatility_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.assets <= MAX_ASSETS:
            raise ValueError(f"--assets must be between 1 and {MAX_ASSETS}, got {self.assets}")

    def sim_assets(self) -> tuple[SimAsset, ...]:
        """The universe's assets first; beyond its 24, synthetic ones repeating their traits."""
        chosen = list(UNIVERSE[: self.assets])
        for i in range(len(UNIVERSE), self.assets):
            like = UNIVERSE[i % len(UNIVERSE)]
            chosen.append(
                SimAsset(
                    f"X{i:04d}", like.start_usd, like.annual_vol, like.beta, like.price_decimals
                )
            )
        return tuple(chosen)

    def bases(self) -> list[str]:
        return [a.base for a in self.sim_assets()]

    def symbols(self) -> list[str]:
        """Unified symbols, one per asset, quoted in USDT."""
        return [f"{base}/{QUOTE}" for base in self.bases()]

    def paths(self) -> PricePaths:
        return PricePaths(
            self.sim_assets(), self.seed, self.seconds_per_step, self.volatility_scale
        )

    def board(self) -> QuoteBoard:
        """The quote board the simulator prints its trades from."""
        return QuoteBoard(self.paths(), self.symbols(), self.seed)


def steps_for(ticks: int, assets: int) -> int:
    """Price steps that make `ticks` ticks (each step prints one trade per asset)."""
    return max(1, math.ceil(ticks / assets))


def make_tape(spec: MarketSpec, count: int, start_ms: int | None = None) -> list[Tick]:
    """The first `count` ticks the simulator would send, one per asset per step.

    Exchange times start at `start_ms` (default now) and advance 1 ms a step, so the
    tape stays within today's date, like live ticks; each tick's receive time is its
    exchange time (the price board rejects ticks stamped far ahead of their receipt).
    """
    board = spec.board()
    listings = board.listings
    first_ms = time.time_ns() // 1_000_000 if start_ms is None else start_ms
    ticks: list[Tick] = []
    for step in range(steps_for(count, len(listings))):
        board.step()
        ts_ms = first_ms + step
        recv_ns = ts_ms * 1_000_000
        for i, x in enumerate(listings):
            price = float(board.price_str(i))
            ticks.append(Tick(VENUE, x.symbol, x.base, x.quote, price, ts_ms, recv_ns))
    return ticks[:count]


def tape_payloads(ticks: list[Tick]) -> list[tuple[bytes, bytes]]:
    """(key, value) of each tick exactly as the ingest stage publishes it."""
    return [(tick_key(t), encode_tick(t)) for t in ticks]


@dataclass(frozen=True, slots=True)
class PathRange:
    """Per asset (in `MarketSpec.bases()` order): where a path starts, the lowest price it
    visits in `steps` steps, and its down-variation below the start (the sum of its
    falls in log price, counting only the part of each fall below the starting price)."""

    start: F64
    low: F64
    down_variation: F64
    steps: int


def path_range(spec: MarketSpec, steps: int) -> PathRange:
    """Step the spec's price paths `steps` times and summarize where they went."""
    paths = spec.paths()
    logs = np.empty((steps + 1, spec.assets), dtype=np.float64)
    logs[0] = np.log(paths.prices())
    for row in range(1, steps + 1):
        logs[row] = np.log(paths.step())
    below = np.minimum(logs, logs[0])
    falls = np.minimum(np.diff(below, axis=0), 0.0)
    return PathRange(
        start=np.exp(logs[0]),
        low=np.exp(logs.min(axis=0)),
        down_variation=-falls.sum(axis=0),
        steps=steps,
    )
