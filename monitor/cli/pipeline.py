"""Commands that run the pipeline: demo, run, ingest, detect, replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from monitor.cli import main
from monitor.cli.output import json_option, start_output
from monitor.cli.runner import (
    config_option,
    duration_option,
    fail,
    run_until_stopped,
    settings_or_exit,
)
from monitor.errors import MonitorError


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
    help="Portfolio CSV (default: the example portfolio shipped with harvest-monitor, on a "
    "temporary ledger).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Port for /metrics, /healthz and /status (default 9464; 0 = off).",
)
@json_option()
def demo(
    duration: float | None,
    seed: int | None,
    config: str | None,
    portfolio: str | None,
    metrics_port: int | None,
    as_json: bool,
) -> None:
    """Offline demo: simulated Binance, Coinbase and Kraken -> feeds -> bus -> consensus
    prices -> detection -> alerts.

    Starts the three simulated exchanges on loopback, each speaking its venue's own
    protocol, one feed per [[feeds]] entry subscribed to every asset of the portfolio.
    On a terminal, prints one readable line per alert and a status line every few
    seconds; piped, or with --json, alerts are hm.alert/1 JSON lines on stdout and logs
    JSON on stderr. Uses Kafka if [kafka] bootstrap_servers is set, else the in-process
    bus. Nothing leaves this machine; `harvest-monitor status` asks it what it is doing.
    """
    from monitor.demo import run_demo

    settings = settings_or_exit(
        config,
        **{"simulator.seed": seed, "metrics.port": metrics_port, "portfolio.path": portfolio},
    )
    console = start_output(settings, as_json)
    run_until_stopped(lambda until: run_demo(settings, until, console), duration)


@main.command()
@config_option(required=True)
@duration_option("Stop after this many seconds (default: run until stopped).")
@json_option()
def run(config: str, duration: float | None, as_json: bool) -> None:
    """The daemon: live exchange feeds -> bus -> consensus prices -> detection -> alerts,
    in one process.

    One feed per [[feeds]] entry (by default the public market data of Binance,
    Coinbase and Kraken), the in-process bus unless [kafka] bootstrap_servers is set,
    the ledger's open lots as the book. Readable alert lines on a terminal, JSON lines
    otherwise (or with --json). `harvest-monitor status` asks it what it is doing.
    """
    _serve(config, duration, as_json, ingest=True, detect=True)


@main.command()
@config_option(required=True)
@duration_option()
@json_option()
def ingest(config: str, duration: float | None, as_json: bool) -> None:
    """Feeds -> Kafka only (the ingest role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, as_json, ingest=True, detect=False)


@main.command()
@config_option(required=True)
@duration_option()
@json_option()
def detect(config: str, duration: float | None, as_json: bool) -> None:
    """Kafka -> detection -> alerts only (the detect role; needs [kafka] bootstrap_servers)."""
    _serve(config, duration, as_json, ingest=False, detect=True)


def _serve(
    config: str, duration: float | None, as_json: bool, *, ingest: bool, detect: bool
) -> None:
    from monitor.app import make_pipeline
    from monitor.ledger.startup import open_ledger_lots
    from monitor.portfolio import empty_lots, load_portfolio

    settings = settings_or_exit(config)
    console = start_output(settings, as_json)
    if not (ingest and detect) and not settings.kafka.bootstrap_servers:
        fail("the ingest and detect roles talk over Kafka: set [kafka] bootstrap_servers")
    ledger = None
    try:
        if detect:  # the book is the ledger's open lots (monitor/ledger/startup.py)
            ledger, lots = open_ledger_lots(settings, role="run" if ingest else "detect")
        elif settings.portfolio.path:  # ingest subscribes the portfolio's assets
            lots = load_portfolio(
                settings.portfolio.path, allow_future=settings.portfolio.allow_future
            )
        elif all(f.symbols for f in settings.feeds):
            lots = empty_lots()
        else:
            fail(
                "ingest derives its symbols from the portfolio: set [portfolio] path, "
                "or list [[feeds]] symbols"
            )
            return
    except MonitorError as exc:
        fail(str(exc))
        return
    pipeline = make_pipeline(
        settings, lots, ingest=ingest, detect=detect, ledger=ledger, console=console
    )
    run_until_stopped(pipeline.run, duration)


@main.command()
@click.option(
    "--portfolio",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Portfolio CSV (required unless --example).",
)
@click.option(
    "--ticks",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Tick JSON lines, in event-time order (docs/replay.md; required unless --example).",
)
@click.option(
    "--example",
    is_flag=True,
    help="Use the example tick file and portfolio shipped with harvest-monitor for whichever "
    "of --ticks / --portfolio is not given.",
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
@click.option(
    "--allow-future",
    is_flag=True,
    help="Accept portfolio lots acquired after now (each joins the book at its acquisition "
    "time, in the ticks' time).",
)
@json_option()
def replay(
    portfolio: str | None,
    ticks: str | None,
    example: bool,
    allow_future: bool,
    config: str | None,
    alerts_out: str | None,
    ledger_path: str | None,
    as_json: bool,
) -> None:
    """Event-time replay of a tick file: the same inputs give byte-identical alerts.

    Reads no wall clock: cooldowns, holding periods and each alert's emitted_at
    come from the ticks' own timestamps. Bad tick lines are reported with their
    line number on stderr and skipped. Alerts go to --alerts-out as JSON lines, else
    to stdout: readable lines on a terminal, JSON lines piped or with --json.
    """
    from monitor.alerts.console import ConsoleSink
    from monitor.alerts.interface import AlertSink
    from monitor.alerts.jsonl import JsonLinesSink
    from monitor.app import replay as run_replay
    from monitor.examples import PORTFOLIO, TICKS, example_path
    from monitor.ledger.startup import open_ledger_lots
    from monitor.portfolio import load_portfolio
    from streams.feeds.replay import ReplayStats, read_ticks

    if example:
        portfolio = portfolio or str(example_path(PORTFOLIO))
        ticks = ticks or str(example_path(TICKS))
    if portfolio is None or ticks is None:
        fail("replay needs --portfolio CSV and --ticks JSONL (or --example for the shipped ones)")
        return
    settings = settings_or_exit(config, **{"portfolio.allow_future": allow_future or None})
    console = start_output(
        settings, as_json, "text" if settings.log.format == "auto" else settings.log.format
    )
    ledger = None
    try:
        if ledger_path:  # the book is the ledger's open lots, the portfolio imported first
            ledger, lots = open_ledger_lots(settings, portfolio, path=ledger_path, role="replay")
        else:
            lots = load_portfolio(portfolio, allow_future=settings.portfolio.allow_future)
    except MonitorError as exc:
        fail(str(exc))
        return
    if alerts_out:
        try:
            Path(alerts_out).unlink(missing_ok=True)  # a replay's output is the whole file
        except OSError as exc:
            if ledger is not None:
                ledger.close()
            fail(f"--alerts-out {alerts_out}: cannot replace it ({exc.strerror or exc})")
    sink: AlertSink
    if alerts_out:
        sink = JsonLinesSink(alerts_out)
    else:
        sink = ConsoleSink(palette=console) if console else JsonLinesSink()
    stats = ReplayStats()
    # A line further ahead of its neighbours than [prices] max_age_s would make the
    # asset's later ticks look stale: it is skipped as a clock error.
    ahead = int(settings.prices.max_age_s * 1000)
    try:
        detector = asyncio.run(
            run_replay(
                settings, lots, read_ticks(ticks, stats, ahead_ms=ahead), [sink], ledger=ledger
            )
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
    if stats.rejected and not stats.ticks:  # e.g. the portfolio given as --ticks
        fail(
            f"{ticks}: not one line is a tick ({len(stats.rejected)} rejected): is it the "
            "tick file? The format is in docs/replay.md"
        )
