"""Binance, Coinbase and Kraken simulated together: one market, three venues, faults on cue.

For the demo, tests and the bench. The venues share one set of price paths (a
`SharedMarket`, stepped by the wall clock) and each adds its own small noise, so they
agree on the market up to a few basis points, as real venues do. Each has its own
loopback server on a free port. Default listings per portfolio asset X: Binance
`X/USDT`, Coinbase and Kraken `X/USD`, plus `USDT/USD` on Coinbase and Kraken so a
USDT de-peg is observable. `feed_configs()` gives the matching `FeedConfig`s.

Faults: `drop(venue)`, `stall(venue, s)`, `send_garbage(venue)`, `skip_sequence()`
(Coinbase), `flash_wick(venue, base, factor)` (one venue prints far off), `drift_peg(coin,
usd, steps)` (every venue: USDT-quoted prices move), `set_price(base, usd)` (the market).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, Final, Self

from streams.errors import SimulatorError
from streams.feeds.interface import FeedConfig
from streams.simulator.binance import BinanceSimulator
from streams.simulator.coinbase import CoinbaseSimulator
from streams.simulator.kraken import KrakenSimulator
from streams.simulator.market import SharedMarket
from streams.simulator.prices import PricePaths
from streams.simulator.universe import UNIVERSE, SimAsset
from streams.simulator.venue import SimulatedVenue

__all__ = ["DEFAULT_ASSETS", "VENUES", "SimulatedVenues", "venue_symbols"]

VENUES: Final = ("binance", "coinbase", "kraken")
DEFAULT_ASSETS: Final = ("BTC", "ETH", "SOL")
GARBAGE: Final = b"\x00 this is not json {"

_CLASSES: Final[Mapping[str, type[SimulatedVenue]]] = {
    "binance": BinanceSimulator,
    "coinbase": CoinbaseSimulator,
    "kraken": KrakenSimulator,
}


def venue_symbols(venue: str, assets: Sequence[str]) -> tuple[str, ...]:
    """The default listings of `venue` for portfolio `assets` (see the module docstring)."""
    bases = sorted({a.upper() for a in assets} - {"USD", "USDT", "USDC"})
    if venue == "binance":
        return tuple(f"{b}/USDT" for b in bases)
    if venue in ("coinbase", "kraken"):
        return (*(f"{b}/USD" for b in bases), "USDT/USD")
    raise SimulatorError(f"unknown simulated venue {venue!r}; known: {', '.join(VENUES)}")


class SimulatedVenues:
    """The simulated venues (default all three) over one shared market; `async with` or start/stop.

    `symbols` overrides the listings per venue; `noise_bp` is each venue's own noise.
    Seeds: the paths use `seed`; venue k's noise and trade sizes use `seed + k`.
    """

    def __init__(
        self,
        assets: Sequence[str] = DEFAULT_ASSETS,
        *,
        venues: Sequence[str] = VENUES,
        symbols: Mapping[str, Sequence[str]] | None = None,
        seed: int = 7,
        tick_interval_ms: float = 50.0,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
        noise_bp: float = 2.0,
        universe: Sequence[SimAsset] = UNIVERSE,
        host: str = "127.0.0.1",
        clock: Callable[[], int] | None = None,
        **venue_options: Any,
    ) -> None:
        if tick_interval_ms <= 0:
            raise SimulatorError("simulated venues share a clock: tick_interval_ms must be > 0")
        paths = PricePaths(universe, seed, seconds_per_step, volatility_scale)
        self.market = SharedMarket(paths, tick_interval_ms / 1000.0)
        self.venues: dict[str, SimulatedVenue] = {}
        for k, name in enumerate(venues):
            if name not in _CLASSES:
                raise SimulatorError(
                    f"unknown simulated venue {name!r}; known: {', '.join(VENUES)}"
                )
            listed = (symbols or {}).get(name) or venue_symbols(name, assets)
            self.venues[name] = _CLASSES[name](
                listed,
                seed + k,
                tick_interval_ms,
                market=self.market,
                noise_bp=noise_bp,
                host=host,
                clock=clock,
                **venue_options,
            )

    async def start(self) -> None:
        """Start every venue (if one fails, the started ones are stopped again)."""
        started: list[SimulatedVenue] = []
        try:
            for venue in self.venues.values():
                await venue.start()
                started.append(venue)
        except BaseException:
            for venue in started:
                await venue.stop()
            raise

    async def stop(self) -> None:
        """Stop every venue."""
        for venue in self.venues.values():
            await venue.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __getitem__(self, venue: str) -> SimulatedVenue:
        try:
            return self.venues[venue]
        except KeyError:
            raise KeyError(f"no simulated venue {venue!r}; running: {list(self.venues)}") from None

    @property
    def urls(self) -> dict[str, str]:
        """Venue -> the URL to configure its feed with (after `start()`)."""
        return {name: venue.url for name, venue in self.venues.items()}

    def symbols(self, venue: str) -> tuple[str, ...]:
        """The unified symbols `venue` lists."""
        return tuple(x.symbol for x in self[venue].board.listings)

    def feed_configs(self, **overrides: Any) -> list[FeedConfig]:
        """One native FeedConfig per venue, pointed at it (`overrides`: other FeedConfig fields)."""
        return [
            replace(FeedConfig(name, self.symbols(name), url=venue.url), **overrides)
            for name, venue in self.venues.items()
        ]

    # Faults ----------------------------------------------------------------------------

    def drop(self, venue: str | None = None) -> int:
        """Cut the connections of `venue` (None: every venue); returns how many."""
        return sum(v.drop_connections() for v in self._targets(venue))

    def stall(self, venue: str, seconds: float) -> None:
        """`venue` sends nothing (no data, heartbeat or pong) for `seconds`, sockets open."""
        self[venue].stall(seconds)

    def resume(self, venue: str) -> None:
        """End a stall of `venue` now."""
        self[venue].resume()

    def send_garbage(self, venue: str, data: str | bytes = GARBAGE) -> int:
        """One text frame of `data` to every client of `venue`; returns how many."""
        return self[venue].send_raw(data)

    def skip_sequence(self, count: int = 1) -> int:
        """Coinbase skips `count` sequence numbers on each connection's next message."""
        venue = self["coinbase"]
        assert isinstance(venue, CoinbaseSimulator)
        return venue.skip_sequence(count)

    def flash_wick(self, venue: str, base: str, factor: float, prints: int = 1) -> int:
        """`venue` alone prints `base` at `factor` x the market for `prints` steps."""
        return self[venue].flash_wick(base, factor, prints)

    def drift_peg(self, stablecoin: str, target_usd: float, steps: int = 0) -> None:
        """Every venue: `stablecoin` moves to `target_usd` over `steps` steps (0: at once)."""
        for venue in self.venues.values():
            venue.drift_peg(stablecoin, target_usd, steps)

    def set_price(self, base: str, usd: float) -> None:
        """Move `base` to `usd` on every venue now; the paths continue from there."""
        self.market.set_price(base, usd)

    def _targets(self, venue: str | None) -> list[SimulatedVenue]:
        return list(self.venues.values()) if venue is None else [self[venue]]
