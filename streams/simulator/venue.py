"""What every simulated venue shares: its quote board and clock, a loopback server, faults.

A venue module (binance.py, coinbase.py, kraken.py) subclasses `SimulatedVenue` and
supplies the protocol: `_serve_client` (one connection), `_step` (send one round of
market data after the board advanced), optionally `_check_path` and `_background` (e.g.
heartbeats). The base owns the lifecycle (`start`/`stop`, `async with`), the pacer, and
the fault API tests and demos use: drop, stall, garbage, flash wick, stablecoin de-peg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from streams.errors import SimulatorError
from streams.simulator.board import QuoteBoard
from streams.simulator.market import SharedMarket
from streams.simulator.prices import PricePaths
from streams.simulator.server import LoopbackServer, run_paced
from streams.simulator.universe import UNIVERSE, SimAsset

__all__ = ["SimulatedVenue", "wall_clock_ms"]

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    """Epoch milliseconds now (a venue's event time unless a test passes its own clock)."""
    return time.time_ns() // 1_000_000


class SimulatedVenue:
    """A simulated venue for unified `symbols` (e.g. 'BTC/USDT') on loopback.

    `start()` binds `host:port` (port 0: a free one); `url` is then the base URL to give a
    feed. Every `tick_interval_ms` the board advances one step and `_step()` sends one
    round of messages. With `market`, the price paths are that shared market's (several
    venues, one market); `noise_bp` adds this venue's own noise. Event times come from
    `clock` (epoch ms; default the wall clock).
    """

    name: ClassVar[str] = "venue"

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 7,
        tick_interval_ms: float = 50.0,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
        *,
        assets: Sequence[SimAsset] = UNIVERSE,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        clock: Callable[[], int] | None = None,
        market: SharedMarket | None = None,
        noise_bp: float = 0.0,
        max_connection_age_s: float | None = None,
        create_connection: type[ServerConnection] | None = None,
    ) -> None:
        if tick_interval_ms < 0:
            raise SimulatorError("tick_interval_ms must be >= 0 (0: as fast as clients read)")
        if market is None:
            self.paths = PricePaths(assets, seed, seconds_per_step, volatility_scale)
            self.board = QuoteBoard(self.paths, symbols, seed, noise_bp=noise_bp)
        else:
            self.paths = market.paths
            self.board = QuoteBoard(
                self.paths, symbols, seed, advance=market.advance, noise_bp=noise_bp
            )
        self.market = market
        self._interval_s = tick_interval_ms / 1000.0
        self._clock = clock or wall_clock_ms
        self._server = LoopbackServer(
            self._serve_client,
            host=host,
            port=port,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            process_request=self._check_path,
            max_connection_age_s=max_connection_age_s,
            create_connection=create_connection,
        )
        self._streaming = asyncio.Event()  # set while some client wants market data
        self._tasks: list[asyncio.Task[None]] = []
        self.messages_sent = 0

    # Protocol hooks ----------------------------------------------------------------------

    async def _serve_client(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def _step(self) -> None:
        """Advance the board one step and send one round of market data."""
        raise NotImplementedError

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        return None

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        """Extra forever-running jobs besides the pacer (e.g. heartbeats)."""
        return []

    # Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen and start the market clock."""
        await self._server.start()
        pacer = run_paced(self._interval_s, self._step, self._ready)
        for job in (pacer, *self._background()):
            self._tasks.append(asyncio.create_task(job, name=f"{self.name}-sim"))
        log.info(
            "simulated %s listening on %s",
            self.name,
            self.url,
            extra={"venue": self.name, "url": self.url, "symbols": len(self.board.listings)},
        )

    async def stop(self) -> None:
        """Stop the clock and close every connection."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._server.stop()

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

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.port

    @property
    def url(self) -> str:
        """Base URL, e.g. `ws://127.0.0.1:PORT`."""
        return self._server.url

    # Observation ---------------------------------------------------------------------------

    @property
    def connections_total(self) -> int:
        """Connections accepted since start."""
        return self._server.connections_total

    @property
    def connections_open(self) -> int:
        """Connections open now."""
        return len(self._server.connections)

    def last_prices(self) -> dict[str, float]:
        """The last price sent per unified symbol (as parsed back from its string)."""
        return self.board.last_prices()

    # Fault injection -----------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Cut every connection abruptly; returns how many."""
        return self._server.drop_connections()

    def send_raw(self, data: str | bytes) -> int:
        """Send one text frame of `data` to every client (garbage); returns how many."""
        return self._server.send_raw(data)

    def stall(self, seconds: float) -> None:
        """Send nothing (no data, heartbeats, replies) for `seconds`; connections stay open."""
        self._server.stall(seconds)

    def resume(self) -> None:
        """End a stall now."""
        self._server.resume()

    @property
    def stalled(self) -> bool:
        """True while a stall is in effect."""
        return self._server.stalled

    def set_price(self, base: str, usd: float) -> None:
        """Move `base` to `usd` now (on every venue of a shared market); steps continue."""
        self.paths.set_price(base, usd)

    def flash_wick(self, base: str, factor: float, prints: int = 1) -> int:
        """This venue alone prints `base` at `factor` x the market for `prints` steps."""
        return self.board.flash_wick(base, factor, prints)

    def drift_peg(self, stablecoin: str, target_usd: float, steps: int = 0) -> None:
        """Move a stablecoin's USD value (e.g. USDT to 0.97) over `steps` steps, on this venue."""
        self.board.drift_peg(stablecoin, target_usd, steps)

    # The market clock ----------------------------------------------------------------------

    async def _ready(self) -> None:
        await self._server.wait_unstalled()
        if self._interval_s <= 0:  # max rate: do not spin without anyone listening
            await self._streaming.wait()

    def _now_ms(self) -> int:
        return self._clock()

    async def _send(self, ws: ServerConnection, messages: list[bytes]) -> None:
        """One round of messages to one client; waits on the last one if it reads slowly.

        Only the last send awaits the client, so a slow reader slows its own stream (it
        is backpressure, as on a real venue) without one round being split by others.
        """
        if not messages:
            return
        for message in messages[:-1]:
            broadcast((ws,), message, text=True)
        try:
            await ws.send(messages[-1], text=True)
        except ConnectionClosed:
            return
        self.messages_sent += len(messages)
