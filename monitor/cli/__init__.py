"""The `harvest-monitor` command line. Alerts go to stdout, status and logs to stderr.

Each command group lives in its own module and registers itself on `main` when imported
below; `main` is the console script.
"""

from __future__ import annotations

from typing import Any

import click

from monitor import __version__
from monitor.cli.runner import fail
from monitor.errors import MonitorError
from streams.errors import StreamsError


class Commands(click.Group):
    """The command group: a user error a command did not catch still ends in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MonitorError, StreamsError) as exc:
            fail(str(exc))


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="harvest-monitor")
def main() -> None:
    """Real-time tax-loss-harvesting monitor for crypto portfolios.

    Watches exchange price ticks (Binance, Coinbase, Kraken, any ccxt venue) against
    your tax lots and emits an alert when selling lots of one (account, wallet, asset)
    would realize a loss worth more than its costs: a readable line on a terminal,
    JSON (schema hm.alert/1, one per line on stdout) piped or with --json, and to
    webhooks, Kafka and websocket subscribers as configured. Not tax advice: check
    every alert against your own situation.

    Start with `harvest-monitor demo`: an offline run against simulated Binance,
    Coinbase and Kraken; `harvest-monitor status` asks a running one what it is doing.
    """


# Command modules register themselves on `main` when imported (--help lists them A-Z).
from monitor.cli import alerts as _alerts  # noqa: E402,F401
from monitor.cli import bench as _bench  # noqa: E402,F401
from monitor.cli import execute as _execute  # noqa: E402,F401
from monitor.cli import lots as _lots  # noqa: E402,F401
from monitor.cli import pipeline as _pipeline  # noqa: E402,F401
from monitor.cli import report as _report  # noqa: E402,F401
from monitor.cli import status as _status  # noqa: E402,F401
from monitor.cli import tax as _tax  # noqa: E402,F401
