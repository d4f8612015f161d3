"""The `harvest-monitor` command line. Alerts go to stdout, status and logs to stderr."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from monitor import __version__
from monitor.errors import MonitorError
from monitor.logs import setup_logging
from monitor.settings import Settings, load_settings
from streams.errors import StreamsError

DEFAULT_PORTFOLIO = "config/portfolio.example.csv"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _settings(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(
            config, overrides={k: v for k, v in overrides.items() if v is not None}
        )
    except MonitorError as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _run(
    coro: Callable[[Callable[[], Awaitable[None]]], Coroutine[Any, Any, None]],
    duration: float | None,
) -> None:
    """Run `coro(until)` until Ctrl-C / SIGTERM or `duration` seconds, exiting 2 on a user error."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        async def until() -> None:
            if duration is None:
                await stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), duration)

        await coro(until)

    try:
        asyncio.run(main())
    except Exception as exc:
        problems = _user_errors(exc)
        if not problems:
            raise
        _fail("; ".join(str(e) for e in problems))


def _user_errors(exc: BaseException) -> list[BaseException]:
    """The configuration/input errors inside `exc` (stages fail inside exception groups)."""
    if isinstance(exc, MonitorError | StreamsError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found = [e for sub in exc.exceptions for e in _user_errors(sub)]
        return found if len(found) == len(exc.exceptions) else []
    return []


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="harvest-monitor")
def main() -> None:
    """Real-time tax-loss-harvesting monitor for crypto portfolios.

    Watches exchange price ticks against your tax lots and emits a JSON alert
    (schema hm.alert/1, one per line on stdout) when selling lots of one
    (account, wallet, asset) would realize a loss worth more than its costs.
    Not tax advice: check every alert against your own situation.

    Start with `harvest-monitor demo`: an offline run against a simulated exchange.
    """


@main.command()
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the simulated market (default 7): same seed, same prices.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML settings (default: built-in defaults).",
)
@click.option(
    "--portfolio",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Portfolio CSV (default {DEFAULT_PORTFOLIO}).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port for /metrics and /healthz (default 9464; 0 = off).",
)
def demo(
    duration: float | None,
    seed: int | None,
    config: str | None,
    portfolio: str | None,
    metrics_port: int | None,
) -> None:
    """Offline demo: simulated exchange -> Binance feed -> bus -> detection -> alerts.

    Starts a simulated Binance-protocol exchange on loopback, subscribes to every
    asset of the portfolio, and prints alerts as JSON lines on stdout and a status
    line every few seconds on stderr. Uses Kafka if [kafka] bootstrap_servers is
    set, else the in-process bus. Nothing leaves this machine.
    """
    from monitor.demo import run_demo

    settings = _settings(
        config,
        **{"simulator.seed": seed, "metrics.port": metrics_port, "portfolio.path": portfolio},
    )
    setup_logging(settings.log.level, settings.log.format)
    _run(lambda until: run_demo(settings, until), duration)


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="TOML settings.",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds (default: run until stopped).",
)
def run(config: str, duration: float | None) -> None:
    """The daemon: live exchange feeds -> bus -> detection -> alerts, in one process.

    Public Binance market data by default; Kafka when [kafka] bootstrap_servers is set.
    """
    _serve(config, duration, ingest=True, detect=True)


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="TOML settings.",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def ingest(config: str, duration: float | None) -> None:
    """Feeds -> Kafka only (the ingest role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, ingest=True, detect=False)


@main.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="TOML settings.",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def detect(config: str, duration: float | None) -> None:
    """Kafka -> detection -> alerts only (the detect role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, ingest=False, detect=True)


def _serve(config: str, duration: float | None, *, ingest: bool, detect: bool) -> None:
    from monitor.app import make_pipeline
    from monitor.portfolio import load_portfolio

    settings = _settings(config)
    setup_logging(settings.log.level, settings.log.format)
    if not (ingest and detect) and not settings.kafka.bootstrap_servers:
        _fail("the ingest and detect roles talk over Kafka: set [kafka] bootstrap_servers")
    try:
        lots = load_portfolio(settings.portfolio.path)
    except MonitorError as exc:
        _fail(str(exc))
        return
    pipeline = make_pipeline(settings, lots, ingest=ingest, detect=detect)
    _run(pipeline.run, duration)


@main.command()
@click.option(
    "--portfolio",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Portfolio CSV.",
)
@click.option(
    "--ticks",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Tick JSON lines, in event-time order.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TOML settings.",
)
@click.option(
    "--alerts-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write alerts here instead of stdout.",
)
def replay(portfolio: str, ticks: str, config: str | None, alerts_out: str | None) -> None:
    """Event-time replay of a tick file: the same inputs give byte-identical alerts.

    Reads no wall clock: cooldowns, holding periods and each alert's emitted_at
    come from the ticks' own timestamps. Bad tick lines are reported with their
    line number on stderr and skipped.
    """
    from monitor.alerts.jsonl import JsonLinesSink
    from monitor.app import replay as run_replay
    from monitor.portfolio import load_portfolio
    from streams.feeds.replay import ReplayStats, read_ticks

    settings = _settings(config)
    setup_logging(
        settings.log.level, "text" if settings.log.format == "auto" else settings.log.format
    )
    try:
        lots = load_portfolio(portfolio)
    except MonitorError as exc:
        _fail(str(exc))
        return
    if alerts_out:
        Path(alerts_out).unlink(missing_ok=True)  # a replay's output is the whole file
    sink = JsonLinesSink(alerts_out) if alerts_out else JsonLinesSink()
    stats = ReplayStats()
    detector = asyncio.run(run_replay(settings, lots, read_ticks(ticks, stats), [sink]))
    target = f" -> {alerts_out}" if alerts_out else ""
    click.echo(
        f"replayed {stats.ticks} ticks ({len(stats.rejected)} rejected) "
        f"over {detector.book.lot_count} lots: {detector.alerts_emitted} alerts{target}",
        err=True,
    )


if __name__ == "__main__":
    main()
