"""The offline demo: the real pipeline against the project's own simulated venues.

One simulated market, printed by a simulated Binance, Coinbase and Kraken on loopback
(each with its own small noise), one feed per `[[feeds]]` entry pointed at its venue ->
bus (in-process, or Kafka if configured) -> consensus prices -> detection over the
example portfolio (monitor.examples; or `--portfolio`) -> alerts on stdout, status (per
venue health) on stderr, metrics on /metrics. Nothing leaves the machine.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from monitor.errors import ConfigError
from monitor.examples import PORTFOLIO, example_path
from monitor.feeds import build_feed_configs
from monitor.portfolio import load_portfolio
from monitor.settings import Settings
from monitor.terminal import Palette
from streams.simulator.venues import VENUES, SimulatedVenues

log = logging.getLogger(__name__)

NOISE_BP = 2.0  # each venue's own noise around the shared market, basis points


async def run_demo(
    settings: Settings, until: Callable[[], Awaitable[None]], console: Palette | None = None
) -> None:
    """Start the simulated venues and the pipeline, run until `until()`, stop cleanly;
    `console`: alerts as readable lines (a terminal) instead of JSON."""
    from monitor.app import make_pipeline
    from monitor.ledger.startup import demo_ledger_path, open_ledger_lots

    example = not settings.portfolio.path
    portfolio = example_path(PORTFOLIO) if example else Path(settings.portfolio.path)
    lots = load_portfolio(portfolio, allow_future=settings.portfolio.allow_future)
    assets = lots["asset"].unique().to_list()
    configs = build_feed_configs(settings, assets)
    unknown = [c.venue for c in configs if c.venue not in VENUES]
    if unknown:
        raise ConfigError(
            f"the demo simulates {', '.join(VENUES)} only; [[feeds]] has {', '.join(unknown)}"
        )
    sim = settings.simulator
    try:
        venues = SimulatedVenues(
            assets,
            venues=[c.venue for c in configs],
            symbols={c.venue: c.symbols for c in configs},  # what each feed will subscribe
            seed=sim.seed,
            tick_interval_ms=sim.tick_interval_ms,
            seconds_per_step=sim.seconds_per_tick,
            volatility_scale=sim.volatility_scale,
            noise_bp=NOISE_BP,
        )
    except ValueError as exc:  # e.g. a portfolio asset the simulated market does not have
        raise ConfigError(f"demo: {exc}") from exc
    async with venues:
        log.info(
            "demo started",
            extra={
                "venues": venues.urls,
                "symbols": sum(len(c.symbols) for c in configs),
                "lots": lots.height,
            },
        )
        # A ledger of its own (fresh unless [ledger] path is set and the portfolio is the
        # user's), holding the portfolio: what paper execution trades and the alerts' record.
        path, scratch = demo_ledger_path(settings, example=example)
        if example and "path" in settings.ledger.model_fields_set:
            log.info(
                "the example portfolio runs on a temporary ledger, not [ledger] path",
                extra={"ledger": settings.ledger.path},
            )
        try:
            ledger, lots = open_ledger_lots(settings, portfolio, path=path, role="demo")
            pipeline = make_pipeline(
                settings, lots, feed_urls=venues.urls, ledger=ledger, console=console, role="demo"
            )
            await pipeline.run(until)
        finally:
            if scratch is not None:
                scratch.cleanup()
