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
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

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
            raise ValueError("PricePaths needs at least one asset (e.g. universe.UNIVERSE)")
        if seconds_per_step <= 0 or volatility_scale <= 0:
            raise ValueError("seconds_per_step and volatility_scale must be positive")
        self.assets = tuple(assets)
        self.bases = tuple(a.base for a in self.assets)
        self._index = {base: i for i, base in enumerate(self.bases)}
        if len(self._index) != len(self.bases):
            raise ValueError("PricePaths assets must have distinct bases")
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
            raise ValueError(f"price for {base} must be a positive finite number, got {usd!r}")
        self._log[self.index(base)] = math.log(usd)

    def force(self, base: str, factor: float) -> None:
        """Multiply `base`'s current price by `factor` (e.g. 0.7 for a 30% drop)."""
        if not factor > 0 or not math.isfinite(factor):
            raise ValueError(f"factor for {base} must be a positive finite number, got {factor!r}")
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


USD_QUOTES = frozenset({"USDT", "USDC", "USD", "FDUSD"})  # priced at exactly one dollar
_QTY_CYCLE = 64  # distinct trade sizes per listing, cycled


@dataclass(frozen=True, slots=True)
class Listing:
    """One simulated market: unified `symbol`, Binance-style ids, print precision."""

    symbol: str  # BTC/USDT
    base: str
    quote: str
    exchange_id: str  # BTCUSDT
    stream_id: str  # btcusdt
    price_decimals: int
    qty_decimals: int


class QuoteBoard:
    """Per-symbol prices of `PricePaths`, as a venue prints them, one step at a time.

    Holds what a venue needs to fill its messages: the price string, a trade size and id,
    the direction of the last move, a rolling high/low/volume and a one-tick book.
    """

    def __init__(self, paths: PricePaths, symbols: Sequence[str], seed: int) -> None:
        listings: dict[str, Listing] = {}
        for symbol in symbols:
            listing = self._listing(paths, symbol)
            listings.setdefault(listing.symbol, listing)
        if not listings:
            raise ValueError("the simulated venue needs at least one symbol, e.g. 'BTC/USDT'")
        self.paths = paths
        self.listings = tuple(listings.values())
        x = self.listings
        self._base = np.array([paths.index(s.base) for s in x])
        self._quote = np.array([-1 if s.quote in USD_QUOTES else paths.index(s.quote) for s in x])
        self._cross = self._quote >= 0
        self._fmt = [f"{{:.{s.price_decimals}f}}".format for s in x]
        self._tick = np.array([10.0**-s.price_decimals for s in x])
        self._px = np.maximum(self._listing_prices(paths.prices()), self._tick)
        self._open = self._px.copy()
        self._high = self._px.copy()
        self._low = self._px.copy()
        self._down = np.zeros(len(x), dtype=bool)
        self._volume = np.zeros(len(x))
        self._quote_volume = np.zeros(len(x))
        # Trade sizes: about $20 to $20,000 a trade, log-uniform, fixed per seed.
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
        notional = np.exp(rng.uniform(np.log(20.0), np.log(20_000.0), (len(x), _QTY_CYCLE)))
        sizes = notional / paths.prices()[self._base][:, None]  # in base units
        self._qty_strs = [
            [f"{max(q, 10.0**-s.qty_decimals):.{s.qty_decimals}f}" for q in row]
            for s, row in zip(x, sizes.tolist(), strict=True)
        ]
        self._qty = np.array([[float(q) for q in row] for row in self._qty_strs])
        self._first_id = [100_000 * (i + 1) for i in range(len(x))]
        self._steps = 0
        self._prices = [f(p) for f, p in zip(self._fmt, self._px.tolist(), strict=True)]

    @staticmethod
    def _listing(paths: PricePaths, symbol: str) -> Listing:
        base, sep, quote = symbol.upper().partition("/")
        if not sep or not base or not quote:
            raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE, e.g. 'BTC/USDT'")
        if base not in paths.bases or (quote not in USD_QUOTES and quote not in paths.bases):
            bases, usd = ", ".join(paths.bases), ", ".join(sorted(USD_QUOTES))
            raise ValueError(
                f"symbol {symbol!r} is not simulated: the base must be one of {bases} "
                f"and the quote one of those or {usd}"
            )
        decimals = paths.assets[paths.index(base)].price_decimals if quote in USD_QUOTES else 8
        qty_decimals = max(0, 7 - paths.assets[paths.index(base)].price_decimals)
        ident = f"{base}{quote}"
        return Listing(f"{base}/{quote}", base, quote, ident, ident.lower(), decimals, qty_decimals)

    def _listing_prices(self, usd: NDArray[np.float64]) -> NDArray[np.float64]:
        price: NDArray[np.float64] = usd[self._base]
        if self._cross.any():
            price = price / np.where(self._cross, usd[np.maximum(self._quote, 0)], 1.0)
        return price

    def step(self) -> None:
        """Advance the paths one step and reprice every listing."""
        px = np.maximum(self._listing_prices(self.paths.step()), self._tick)
        self._steps += 1
        self._down = px < self._px
        self._px = px
        np.maximum(self._high, px, out=self._high)
        np.minimum(self._low, px, out=self._low)
        qty = self._qty[:, self._steps % _QTY_CYCLE]
        self._volume += qty
        self._quote_volume += qty * px
        self._prices = [f(p) for f, p in zip(self._fmt, px.tolist(), strict=True)]

    @property
    def steps(self) -> int:
        """Steps taken (the trade id of every listing grows by one per step)."""
        return self._steps

    def price_str(self, i: int) -> str:
        """Listing `i`'s price, printed with its decimals."""
        return self._prices[i]

    def qty_str(self, i: int) -> str:
        """The size of listing `i`'s trade this step."""
        return self._qty_strs[i][self._steps % _QTY_CYCLE]

    def trade_id(self, i: int) -> int:
        """Listing `i`'s trade id this step."""
        return self._first_id[i] + self._steps

    def went_down(self, i: int) -> bool:
        """True if this step's price is below the last (the buyer was the maker)."""
        return bool(self._down[i])

    def day_stats(self, i: int) -> tuple[str, str, str, str, str]:
        """Open, high, low, base volume and quote volume since the start, printed."""
        f = self._fmt[i]
        return (
            f(self._open[i]),
            f(self._high[i]),
            f(self._low[i]),
            f"{self._volume[i]:.8f}",
            f"{self._quote_volume[i]:.8f}",
        )

    def book(self, i: int) -> tuple[str, str]:
        """Best bid and ask: one price tick either side of the last price."""
        price, tick, f = self._px[i], self._tick[i], self._fmt[i]
        return f(max(price - tick, tick)), f(price + tick)

    def last_prices(self) -> dict[str, float]:
        """The last price per unified symbol, as printed."""
        return {x.symbol: float(p) for x, p in zip(self.listings, self._prices, strict=True)}
