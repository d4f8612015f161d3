"""Deterministic simulated price paths: a correlated, fat-tailed market with drawdowns.

Each step, an asset's log return is `beta * market + idiosyncratic`, both Student-t
(4 degrees of freedom, scaled to unit variance). A regime machine moves the whole market:
calm, then a drawdown (3% to 40% of the market factor over tens to hundreds of steps,
high-beta assets falling further, volatility up), then a partial or full recovery. The
diffusion is calibrated so that, over that cycle, an asset's annualized volatility is
close to `annual_vol * volatility_scale` (drawdown depths scale with it too). Regime
lengths are counted in steps, not simulated time, so a demo at ~20 steps/s crosses
harvest thresholds within its first minute whatever `seconds_per_step` is. Same seed,
same assets: same sequence, step for step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from streams.errors import SimulatorError

# The quote board lives in board.py; re-exported here, where it was first defined.
from streams.simulator.board import USD_QUOTES, Listing, QuoteBoard
from streams.simulator.universe import SimAsset

__all__ = ["USD_QUOTES", "Listing", "PricePaths", "QuoteBoard", "Regime"]

SECONDS_PER_YEAR = 365.0 * 24 * 3600  # crypto trades around the clock
MARKET_VOL = 0.50  # annualized volatility of the common factor (beta 1.0 carries this much)
TAIL_DF = 4.0  # Student-t degrees of freedom: fat tails, finite variance
_T_SCALE = math.sqrt((TAIL_DF - 2.0) / TAIL_DF)  # makes the t draws unit-variance
_BLOCK = 256  # noise rows drawn per RNG call (amortizes numpy overhead per step)

# Regime machine, in steps. The first drawdown starts early and is at least 10% deep so a
# demo always shows harvests; later ones arrive at random (mean gap _CALM_MEAN steps).
_FIRST_START = (10, 120)
_FIRST_DEPTH = (0.10, 0.25)
_CALM_MEAN = 600.0
_DRAW_STEPS = (40, 400)
_RECOVER_STEPS = (100, 600)
_RECOVER_FRACTION = (0.5, 1.0)  # of the market's accumulated fall


class Regime(StrEnum):
    """Where the simulated market is in its drawdown cycle."""

    CALM = "calm"
    DRAWDOWN = "drawdown"
    RECOVERY = "recovery"


# Volatility by regime, chosen so that averaged over the cycle (time shares ~50/20/30%, with
# the drawdown drift) the annualized volatility stays close to annual_vol.
_VOL_MULTIPLIER = {Regime.CALM: 0.8, Regime.DRAWDOWN: 1.4, Regime.RECOVERY: 0.95}


class PricePaths:
    """USD price paths for `assets`, advanced one step (`seconds_per_step` of market time) a call.

    `step()` returns the new prices in the order of `assets`. `set_price` and `force` move
    one asset's level (for tests) without changing the random sequence that follows.
    """

    def __init__(
        self,
        assets: Sequence[SimAsset],
        seed: int,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
    ) -> None:
        if not assets:
            raise SimulatorError("PricePaths needs at least one asset (e.g. universe.UNIVERSE)")
        if seconds_per_step <= 0 or volatility_scale <= 0:
            raise SimulatorError("seconds_per_step and volatility_scale must be positive")
        self.assets = tuple(assets)
        self.bases = tuple(a.base for a in self.assets)
        self._index = {base: i for i, base in enumerate(self.bases)}
        if len(self._index) != len(self.bases):
            raise SimulatorError("PricePaths assets must have distinct bases")
        self.seed = seed
        self.seconds_per_step = seconds_per_step
        self.volatility_scale = volatility_scale

        noise_seq, regime_seq = np.random.SeedSequence(seed).spawn(2)
        self._noise_rng = np.random.Generator(np.random.PCG64(noise_seq))
        self._regime_rng = np.random.Generator(np.random.PCG64(regime_seq))

        sqrt_dt = math.sqrt(seconds_per_step / SECONDS_PER_YEAR) * volatility_scale
        vol = np.array([a.annual_vol for a in self.assets], dtype=np.float64)
        self._beta = np.array([a.beta for a in self.assets], dtype=np.float64)
        idio = np.sqrt(np.maximum(vol**2 - (self._beta * MARKET_VOL) ** 2, (0.25 * vol) ** 2))
        self._market_sd = MARKET_VOL * sqrt_dt * _T_SCALE
        self._idio_sd = idio * sqrt_dt * _T_SCALE
        # Ito correction: keeps each price path a martingale in calm times.
        self._ito = -0.5 * (vol * sqrt_dt) ** 2
        self._log = np.log(np.array([a.start_usd for a in self.assets], dtype=np.float64))
        self._noise = np.empty((0, len(self.assets) + 1))
        self._row = 0
        self._steps = 0

        self._regime = Regime.CALM
        self._regime_left = int(self._regime_rng.integers(*_FIRST_START))
        self._drift = 0.0  # market log drift per step in the current regime
        self._level = 0.0  # accumulated regime log move of the market factor
        self._first_drawdown = True

    @property
    def steps(self) -> int:
        """Steps taken so far."""
        return self._steps

    @property
    def regime(self) -> Regime:
        """The market's current regime (for logs and demos)."""
        return self._regime

    def index(self, base: str) -> int:
        """Position of `base` in the price arrays; KeyError names the known bases."""
        try:
            return self._index[base.upper()]
        except KeyError:
            known = ", ".join(self.bases)
            raise KeyError(f"unknown simulated asset {base!r}; known: {known}") from None

    def prices(self) -> NDArray[np.float64]:
        """Current USD prices (a copy), without advancing."""
        return np.exp(self._log)

    def step(self) -> NDArray[np.float64]:
        """Advance every asset one step; return the new USD prices."""
        if self._row >= len(self._noise):
            self._noise = self._noise_rng.standard_t(TAIL_DF, size=(_BLOCK, len(self.assets) + 1))
            self._row = 0
        z = self._noise[self._row]
        self._row += 1
        vm = self._advance_regime()
        market = self._drift + self._market_sd * vm * z[0]
        self._log += self._beta * market + self._idio_sd * vm * z[1:] + self._ito * (vm * vm)
        self._steps += 1
        return np.exp(self._log)

    def set_price(self, base: str, usd: float) -> None:
        """Put `base` at `usd` now; later steps move it from there."""
        if not usd > 0 or not math.isfinite(usd):
            raise SimulatorError(f"price for {base} must be a positive finite number, got {usd!r}")
        self._log[self.index(base)] = math.log(usd)

    def force(self, base: str, factor: float) -> None:
        """Multiply `base`'s current price by `factor` (e.g. 0.7 for a 30% drop)."""
        if not factor > 0 or not math.isfinite(factor):
            raise SimulatorError(
                f"factor for {base} must be a positive finite number, got {factor!r}"
            )
        self._log[self.index(base)] += math.log(factor)

    def _advance_regime(self) -> float:
        """Move the regime machine one step; return the volatility multiplier for this step."""
        if self._regime_left <= 0:
            self._next_regime()
        self._regime_left -= 1
        self._level += self._drift
        return _VOL_MULTIPLIER[self._regime]

    def _next_regime(self) -> None:
        rng = self._regime_rng
        if self._regime is Regime.CALM:
            depth = self._draw_depth()
            steps = int(rng.integers(*_DRAW_STEPS))
            self._regime, self._regime_left = Regime.DRAWDOWN, steps
            self._drift = math.log(1.0 - depth) * self.volatility_scale / steps
        elif self._regime is Regime.DRAWDOWN:
            steps = int(rng.integers(*_RECOVER_STEPS))
            fraction = float(rng.uniform(*_RECOVER_FRACTION))
            self._regime, self._regime_left = Regime.RECOVERY, steps
            self._drift = -self._level * fraction / steps
        else:
            self._regime, self._drift = Regime.CALM, 0.0
            self._regime_left = max(1, int(rng.exponential(_CALM_MEAN)))

    def _draw_depth(self) -> float:
        """Drawdown depth of the market factor: mostly a few %, sometimes 20-40%."""
        rng = self._regime_rng
        if self._first_drawdown:
            self._first_drawdown = False
            return float(rng.uniform(*_FIRST_DEPTH))
        kind = rng.random()
        if kind < 0.6:
            return float(rng.uniform(0.03, 0.10))
        if kind < 0.9:
            return float(rng.uniform(0.10, 0.20))
        return float(rng.uniform(0.20, 0.40))
