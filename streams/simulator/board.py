"""The quote board: a venue's prints of the shared USD price paths, one step at a time.

Each listing's price is `value(base) / value(quote)`: a simulated asset's value is its
path price, a stablecoin's its peg (1.0 unless told to drift; USD is always 1.0), so
`BTC/USDT` moves when USDT de-pegs and `ETH/BTC` is a cross rate. A venue may add its
own small noise (basis points, seeded), and print a flash wick on cue (one or a few prints
far off, then back). Same paths, symbols and seed: same prints, step for step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from streams.errors import SimulatorError

if TYPE_CHECKING:
    from streams.simulator.prices import PricePaths

__all__ = ["STABLECOINS", "USD_QUOTES", "Listing", "QuoteBoard"]

STABLECOINS = ("USD", "USDT", "USDC", "FDUSD")  # valued at their peg (USD: always 1.0)
USD_QUOTES = frozenset(STABLECOINS)
_STABLE_DECIMALS = 4  # a stablecoin priced in dollars: 1.0002
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
    `advance` returns the USD prices of the next step (default: `paths.step`; a
    `SharedMarket` passes its clock-driven one so several venues print the same market).
    """

    def __init__(
        self,
        paths: PricePaths,
        symbols: Sequence[str],
        seed: int,
        *,
        advance: Callable[[], NDArray[np.float64]] | None = None,
        noise_bp: float = 0.0,
    ) -> None:
        listings: dict[str, Listing] = {}
        for symbol in symbols:
            listing = self._listing(paths, symbol)
            listings.setdefault(listing.symbol, listing)
        if not listings:
            raise SimulatorError("the simulated venue needs at least one symbol, e.g. 'BTC/USDT'")
        if noise_bp < 0 or not math.isfinite(noise_bp):
            raise SimulatorError(f"noise_bp must be >= 0, got {noise_bp!r}")
        self.paths = paths
        self.listings = tuple(listings.values())
        x = self.listings
        slot = {b: i for i, b in enumerate(paths.bases)}
        slot.update({s: len(slot) + j for j, s in enumerate(STABLECOINS)})
        self._slot = slot
        self._peg = np.ones(len(STABLECOINS))
        self._drift: dict[str, tuple[float, int]] = {}  # stablecoin -> (target, steps left)
        self._base = np.array([slot[s.base] for s in x])
        self._quote = np.array([slot[s.quote] for s in x])
        self._advance = advance or paths.step
        self._noise_sd = noise_bp / 1e4
        self._noise_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2])))
        self._wick: dict[int, tuple[float, int]] = {}  # listing -> (factor, prints left)
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
        sizes = notional / self._values(paths.prices())[self._base][:, None]  # in base units
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
        crypto = set(paths.bases)
        if (
            not sep
            or base == quote
            or base not in crypto | (USD_QUOTES - {"USD"})
            or quote not in crypto | USD_QUOTES
        ):
            bases, usd = ", ".join(paths.bases), ", ".join(STABLECOINS)
            raise SimulatorError(
                f"symbol {symbol!r} is not simulated: the base must be one of {bases} (or a "
                f"stablecoin), the quote one of those or {usd}, e.g. 'BTC/USDT'"
            )
        if base in crypto:
            asset_decimals = paths.assets[paths.index(base)].price_decimals
            qty_decimals = max(0, 7 - asset_decimals)
        else:
            asset_decimals, qty_decimals = _STABLE_DECIMALS, 2
        decimals = asset_decimals if quote in USD_QUOTES else 8
        ident = f"{base}{quote}"
        return Listing(f"{base}/{quote}", base, quote, ident, ident.lower(), decimals, qty_decimals)

    def _values(self, usd: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.concatenate((usd, self._peg))

    def _listing_prices(self, usd: NDArray[np.float64]) -> NDArray[np.float64]:
        values = self._values(usd)
        price: NDArray[np.float64] = values[self._base] / values[self._quote]
        return price

    def step(self) -> None:
        """Advance the market one step and reprice every listing."""
        usd = self._advance()
        self._move_pegs()
        px = self._listing_prices(usd)
        if self._noise_sd:
            px = px * np.exp(self._noise_rng.normal(0.0, self._noise_sd, len(px)))
        for i, (factor, left) in list(self._wick.items()):
            px[i] *= factor
            if left > 1:
                self._wick[i] = (factor, left - 1)
            else:
                del self._wick[i]
        px = np.maximum(px, self._tick)
        self._steps += 1
        self._down = px < self._px
        self._px = px
        np.maximum(self._high, px, out=self._high)
        np.minimum(self._low, px, out=self._low)
        qty = self._qty[:, self._steps % _QTY_CYCLE]
        self._volume += qty
        self._quote_volume += qty * px
        self._prices = [f(p) for f, p in zip(self._fmt, px.tolist(), strict=True)]

    # Faults --------------------------------------------------------------------------------

    def flash_wick(self, base: str, factor: float, prints: int = 1) -> int:
        """Multiply the next `prints` prints of every `base` listing by `factor`; returns how many.

        E.g. factor 0.7: a 30% wick down, printed once, then the price is back.
        """
        if not factor > 0 or not math.isfinite(factor) or prints < 1:
            raise SimulatorError("flash_wick needs a positive factor and prints >= 1")
        hit = [i for i, x in enumerate(self.listings) if x.base == base.upper()]
        for i in hit:
            self._wick[i] = (factor, prints)
        return len(hit)

    def drift_peg(self, stablecoin: str, target_usd: float, steps: int = 0) -> None:
        """Move a stablecoin's USD value to `target_usd` over `steps` steps (0: at once)."""
        coin = stablecoin.upper()
        if coin not in USD_QUOTES or coin == "USD":
            others = ", ".join(STABLECOINS[1:])
            raise SimulatorError(f"{stablecoin!r} is not a simulated stablecoin ({others})")
        if not target_usd > 0 or not math.isfinite(target_usd):
            raise SimulatorError(f"peg target must be a positive number, got {target_usd!r}")
        if steps <= 0:
            self._drift.pop(coin, None)
            self._peg[STABLECOINS.index(coin)] = target_usd
        else:
            self._drift[coin] = (target_usd, steps)

    def peg(self, stablecoin: str) -> float:
        """A stablecoin's current USD value."""
        return float(self._peg[STABLECOINS.index(stablecoin.upper())])

    def _move_pegs(self) -> None:
        for coin, (target, left) in list(self._drift.items()):
            i = STABLECOINS.index(coin)
            self._peg[i] += (target - self._peg[i]) / left
            if left > 1:
                self._drift[coin] = (target, left - 1)
            else:
                del self._drift[coin]

    # What a venue prints -------------------------------------------------------------------

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

    def change_pct(self, i: int) -> float:
        """Percent change of listing `i` since the start (the venue's '24h' change)."""
        return float((self._px[i] / self._open[i] - 1.0) * 100.0)

    def book(self, i: int) -> tuple[str, str]:
        """Best bid and ask: one price tick either side of the last price."""
        price, tick, f = self._px[i], self._tick[i], self._fmt[i]
        return f(max(price - tick, tick)), f(price + tick)

    def last_prices(self) -> dict[str, float]:
        """The last price per unified symbol, as printed."""
        return {x.symbol: float(p) for x, p in zip(self.listings, self._prices, strict=True)}
