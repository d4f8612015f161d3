"""The offline demo: the real pipeline against the project's own simulated exchange.

Simulated Binance on loopback -> Binance feed -> bus (in-process, or Kafka if configured)
-> detection over the example portfolio -> alerts on stdout, status on stderr, metrics
on /metrics. Nothing leaves the machine.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from streams.simulator.binance import BinanceSimulator

from monitor.app import feed_symbols, make_pipeline
from monitor.portfolio import load_portfolio
from monitor.settings import Settings

log = logging.getLogger(__name__)


async def run_demo(settings: Settings, until: Callable[[], Awaitable[None]]) -> None:
    """Start the simulator and the pipeline, run until `until()` returns, stop cleanly."""
    lots = load_portfolio(settings.portfolio.path)
    assets = lots["asset"].unique().to_list()
    symbols = feed_symbols(settings.feeds[0], assets)
    sim = settings.simulator
    simulator = BinanceSimulator(
        symbols=symbols,
        seed=sim.seed,
        tick_interval_ms=sim.tick_interval_ms,
        seconds_per_step=sim.seconds_per_tick,
        volatility_scale=sim.volatility_scale,
    )
    await simulator.start()
    try:
        log.info(
            "demo started",
            extra={"simulator": simulator.url, "symbols": len(symbols), "lots": lots.height},
        )
        pipeline = make_pipeline(settings, lots, feed_url=simulator.url)
        await pipeline.run(until)
    finally:
        await simulator.stop()
