"""The simulated exchange in a child process, as a real venue would be: elsewhere.

Run in the bench's own process, the simulator would take CPU from the very feed it is
measuring. The child is spawned (not forked: the parent runs an event loop and threads),
rebuilds the market from its `MarketSpec`, sends back its URL, and serves until told to
stop or until the parent goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType

from monitor.bench.market import MarketSpec
from streams.simulator.binance import BinanceSimulator

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def _serve(spec: MarketSpec, tick_interval_ms: float, conn: Connection) -> None:
    asyncio.run(_serve_until_told(spec, tick_interval_ms, conn))


async def _serve_until_told(spec: MarketSpec, tick_interval_ms: float, conn: Connection) -> None:
    simulator = BinanceSimulator(
        spec.symbols(),
        seed=spec.seed,
        tick_interval_ms=tick_interval_ms,
        seconds_per_step=spec.seconds_per_step,
        volatility_scale=spec.volatility_scale,
        assets=spec.sim_assets(),
        ping_interval=None,  # a bench run must not spend time on keep-alives
        max_requests_per_s=None,
    )
    async with simulator:
        conn.send(simulator.url)
        with contextlib.suppress(EOFError, OSError):  # the parent went away: stop too
            await asyncio.to_thread(conn.recv)


class ChildExchange:
    """`async with ChildExchange(spec, tick_interval_ms) as url:` a simulated Binance.

    `tick_interval_ms=0` sends as fast as clients read; otherwise one trade per asset
    every `tick_interval_ms`.
    """

    def __init__(self, spec: MarketSpec, tick_interval_ms: float) -> None:
        self._spec = spec
        self._interval = tick_interval_ms
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    async def __aenter__(self) -> str:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(self._spec, self._interval, theirs),
            name="bench-exchange",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, mine
        ready = await asyncio.to_thread(mine.poll, START_TIMEOUT_S)
        if not ready:
            await self._stop()
            raise RuntimeError(
                f"the simulated exchange did not start within {START_TIMEOUT_S:.0f} s "
                f"(child exit code {process.exitcode})"
            )
        url: str = mine.recv()
        return url

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send("stop")
            conn.close()
        if process is None:
            return
        await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
