"""Commands that run the pipeline: demo, run, ingest, detect, replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from monitor.cli import main
from monitor.cli.runner import (
    DEFAULT_PORTFOLIO,
    config_option,
    duration_option,
    fail,
    run_until_stopped,
    settings_or_exit,
)
from monitor.errors import MonitorError
from monitor.logs import setup_logging


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

    settings = settings_or_exit(
        config,
        **{"simulator.seed": seed, "metrics.port": metrics_port, "portfolio.path": portfolio},
    )
    setup_logging(settings.log.level, settings.log.format)
    run_until_stopped(lambda until: run_demo(settings, until), duration)


@main.command()
@config_option(required=True)
@duration_option("Stop after this many seconds (default: run until stopped).")
def run(config: str, duration: float | None) -> None:
    """The daemon: live exchange feeds -> bus -> detection -> alerts, in one process.

    Public Binance market data by default; Kafka when [kafka] bootstrap_servers is set.
    """
    _serve(config, duration, ingest=True, detect=True)


@main.command()
@config_option(required=True)
@duration_option()
def ingest(config: str, duration: float | None) -> None:
    """Feeds -> Kafka only (the ingest role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, ingest=True, detect=False)


@main.command()
@config_option(required=True)
@duration_option()
def detect(config: str, duration: float | None) -> None:
    """Kafka -> detection -> alerts only (the detect role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, ingest=False, detect=True)


def _serve(config: str, duration: float | None, *, ingest: bool, detect: bool) -> None:
    from monitor.app import make_pipeline
    from monitor.ledger.startup import open_ledger_lots
    from monitor.portfolio import load_portfolio

    settings = settings_or_exit(config)
    setup_logging(settings.log.level, settings.log.format)
    if not (ingest and detect) and not settings.kafka.bootstrap_servers:
        fail("the ingest and detect roles talk over Kafka: set [kafka] bootstrap_servers")
    ledger = None
    try:
        if detect:  # the book is the ledger's open lots (monitor/ledger/startup.py)
            ledger, lots = open_ledger_lots(settings)
        else:
            lots = load_portfolio(settings.portfolio.path)
    except MonitorError as exc:
        fail(str(exc))
        return
    pipeline = make_pipeline(settings, lots, ingest=ingest, detect=detect, ledger=ledger)
    run_until_stopped(pipeline.run, duration)


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
@config_option(required=False)
@click.option(
    "--alerts-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write alerts here instead of stdout.",
)
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(dir_okay=False),
    default=None,
    help='Import the portfolio into this ledger and, with [execution] mode = "paper", '
    "execute each alert there before the next tick.",
)
def replay(
    portfolio: str,
    ticks: str,
    config: str | None,
    alerts_out: str | None,
    ledger_path: str | None,
) -> None:
    """Event-time replay of a tick file: the same inputs give byte-identical alerts.

    Reads no wall clock: cooldowns, holding periods and each alert's emitted_at
    come from the ticks' own timestamps. Bad tick lines are reported with their
    line number on stderr and skipped.
    """
    from monitor.alerts.jsonl import JsonLinesSink
    from monitor.app import replay as run_replay
    from monitor.ledger.startup import open_ledger_lots
    from monitor.portfolio import load_portfolio
    from streams.feeds.replay import ReplayStats, read_ticks

    settings = settings_or_exit(config)
    setup_logging(
        settings.log.level, "text" if settings.log.format == "auto" else settings.log.format
    )
    ledger = None
    try:
        if ledger_path:  # the book is the ledger's open lots, the portfolio imported first
            ledger, lots = open_ledger_lots(settings, portfolio, path=ledger_path)
        else:
            lots = load_portfolio(portfolio)
    except MonitorError as exc:
        fail(str(exc))
        return
    if alerts_out:
        Path(alerts_out).unlink(missing_ok=True)  # a replay's output is the whole file
    sink = JsonLinesSink(alerts_out) if alerts_out else JsonLinesSink()
    stats = ReplayStats()
    try:
        detector = asyncio.run(
            run_replay(settings, lots, read_ticks(ticks, stats), [sink], ledger=ledger)
        )
    finally:
        if ledger is not None:
            ledger.close()
    target = f" -> {alerts_out}" if alerts_out else ""
    click.echo(
        f"replayed {stats.ticks} ticks ({len(stats.rejected)} rejected) "
        f"over {detector.book.lot_count} lots: {detector.alerts_emitted} alerts{target}",
        err=True,
    )
