"""`harvest-monitor alerts ...`: tail the websocket subscription, mint tokens, redeliver."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from monitor.cli import main
from monitor.cli.runner import fail, ledger_to_read, settings_or_exit
from monitor.errors import MonitorError
from monitor.settings import Settings

if TYPE_CHECKING:
    from monitor.ledger.ledger import Ledger

DEFAULT_URL = "ws://127.0.0.1:9465/v1/alerts"
TOKEN_ENV = "HM_ALERTS_TOKEN"


@main.group()
def alerts() -> None:
    """Alert subscriptions: follow the websocket feed, make tokens, replay dead letters."""


@alerts.command()
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    help="The subscription server ([subscriptions] host and websocket_port).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    default=None,
    help=f"Bearer token (better: the {TOKEN_ENV} environment variable; never echoed).",
)
@click.option("--since", default=None, help="Replay from an alert id (after it) or an ISO time.")
@click.option("--account", "accounts", multiple=True, help="Only these accounts (repeatable).")
@click.option("--asset", "assets", multiple=True, help="Only these assets (repeatable).")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds: harvest, deadline, ...")
@click.option("--min-net-benefit", type=float, default=0.0, help="Only alerts worth this (USD).")
@click.option("--count", type=int, default=None, help="Exit after this many alerts.")
@click.option(
    "--no-reconnect",
    is_flag=True,
    help="Exit when the connection fails or drops (exit status 1: it did not end by --count).",
)
def tail(
    url: str,
    token: str | None,
    since: str | None,
    accounts: tuple[str, ...],
    assets: tuple[str, ...],
    kinds: tuple[str, ...],
    min_net_benefit: float,
    count: int | None,
    no_reconnect: bool,
) -> None:
    """Print alerts from the subscription server as JSON lines, as they happen.

    Reconnects after a drop with since=<last alert id>, so nothing is missed and
    nothing is printed twice; connection events go to stderr.
    """
    from monitor.alerts.client import AlertClient, SubscriptionRefused
    from monitor.alerts.filter import AlertFilter

    if not token:
        fail(f"no token: set {TOKEN_ENV} (or pass --token); make one with `alerts token`")
        return
    client = AlertClient(
        url,
        token,
        AlertFilter.of(accounts, assets, min_net_benefit, kinds),
        since,
        reconnect=not no_reconnect,
        on_event=lambda message: click.echo(f"[tail] {message}", err=True),
    )

    async def run() -> int:
        printed = 0
        async for item in client.alerts():
            sys.stdout.buffer.write(item.raw + b"\n")
            sys.stdout.buffer.flush()
            printed += 1
            if count is not None and printed >= count:
                break
        return printed

    try:
        printed = asyncio.run(run())
    except SubscriptionRefused as exc:
        fail(f"{url}: {exc}")
        return
    except KeyboardInterrupt:
        return
    if count is None or printed < count:  # --no-reconnect: the connection failed or dropped
        click.echo(f"error: {url}: {client.ended or 'connection ended'}", err=True)
        sys.exit(1)


@alerts.command()
@click.option("--name", default="subscriber", show_default=True, help="Who holds the token.")
@click.option(
    "--hash-stdin", is_flag=True, help="Hash a token read from stdin instead of making one."
)
def token(name: str, hash_stdin: bool) -> None:
    """Make a subscriber token: the token (give it to the subscriber) and its settings entry.

    Only the sha256 goes in the settings; the token is shown once, here.
    """
    from monitor.alerts.tokens import new_token, token_hash

    value = sys.stdin.readline().strip() if hash_stdin else new_token()
    if not value:
        fail("no token on stdin")
    if not hash_stdin:
        click.echo(f"# token for {name} (give it to the subscriber as {TOKEN_ENV}; not stored):")
        click.echo(value)
    click.echo(f'[[subscriptions.tokens]]\nname = "{name}"\nsha256 = "{token_hash(value)}"')


@alerts.command("webhook-secret")
def webhook_secret() -> None:
    """Print a new webhook signing secret, `whsec_<base64 of 32 random bytes>`.

    Give it to the receiver (Standard Webhooks libraries take it as it is) and to the
    monitor through the subscription's secret_env or secret_file, never the settings file.
    """
    from monitor.alerts.signing import new_secret

    click.echo(new_secret())


@alerts.command()
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="TOML settings ([[webhooks]] and [ledger]).",
)
@click.option("--subscription", default=None, help="Only this webhook subscription.")
@click.option(
    "--attempts",
    type=int,
    default=3,
    show_default=True,
    help="Tries per dead letter (with the subscription's backoff).",
)
def redeliver(config: str, subscription: str | None, attempts: int) -> None:
    """Send dead-lettered webhook alerts again; delivered ones leave the table.

    Exits 1 while letters remain (failed again, or their subscription is gone).
    """
    from monitor.alerts.redelivery import redeliver as run_redelivery
    from monitor.alerts.webhook import webhook_targets

    settings = settings_or_exit(config)
    try:
        targets = {t.name: t for t in webhook_targets(settings.webhooks)}
    except MonitorError as exc:
        fail(str(exc))
        return
    if subscription is not None and subscription not in targets:
        fail(f"--subscription {subscription!r}: no such [[webhooks]] entry in {config}")
    with _ledger(settings) as ledger:
        report = asyncio.run(
            run_redelivery(ledger.alerts, targets, subscription, attempts=attempts)
        )
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    click.echo(f"redelivered {report.delivered}, still dead {report.remaining}")
    if report.remaining:
        sys.exit(1)


@alerts.command("dead-letters")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="TOML settings ([ledger]).",
)
@click.option("--subscription", default=None, help="Only this webhook subscription.")
def dead_letters(config: str, subscription: str | None) -> None:
    """List the dead-letter table: id, subscription, alert id, attempts, failed at, error."""
    settings = settings_or_exit(config)
    with _ledger(settings) as ledger:
        letters = ledger.alerts.dead_letters(subscription)
    for d in letters:
        click.echo(
            f"{d.id}\t{d.subscription}\t{d.alert_id}\t{d.attempts}\t{d.failed_at}\t{d.last_error}"
        )
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@contextlib.contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    """The ledger of `[ledger] path`, open for the command, closed after."""
    from monitor.ledger.ledger import Ledger

    try:
        ledger = Ledger(ledger_to_read(settings)).open()
    except MonitorError as exc:
        fail(str(exc))
        raise
    try:
        yield ledger
    finally:
        ledger.close()
