"""`harvest-monitor lots`: the ledger's open lots; `lots import FILE` loads a portfolio."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import click
import polars as pl

from monitor.cli import main
from monitor.cli.runner import fail, ledger_to_read, settings_or_exit

CONFIG = click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TOML settings ([ledger] path, [tax], [harvest]).",
)
COLUMNS = (
    "lot_id",
    "account",
    "wallet",
    "asset",
    "quantity",
    "cost_basis_usd",
    "acquired",
    "price_usd",
    "value_usd",
    "unrealized_usd",
    "trigger_usd",
    "harvestable",
)


@main.group(invoke_without_command=True)
@CONFIG
@click.option("--account", default=None, help="Only this account.")
@click.option("--asset", default=None, help="Only this asset.")
@click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="ASSET=USD",
    help="The price to value an asset at (repeatable); default: its latest alert's price.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.pass_context
def lots(
    ctx: click.Context,
    config: str | None,
    account: str | None,
    asset: str | None,
    prices: tuple[str, ...],
    fmt: str,
) -> None:
    """Open lots with unrealized P&L and each lot's trigger price at the last price.

    The trigger is the price under which harvesting the lot is worth it ([harvest],
    [tax]); a lot is harvestable when the last price is at or under it, `unknown`
    when the asset has no known price. The last price of an asset is --price, else
    the price of its latest alert in the ledger. An --account or --asset that matches
    no lot exits 1 naming what is held; a --price for an asset not held is refused.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.book import build_book
    from monitor.ledger import Ledger

    settings = settings_or_exit(config)
    given = _parse_prices(prices)
    ledger = Ledger(ledger_to_read(settings)).open()
    try:
        frame = ledger.open_lots()
        latest = ledger.alerts.latest_prices()
    finally:
        ledger.close()
    _check_priced_assets(given, frame, settings.ledger.path)
    last = {a: Decimal(p) for a, (p, _) in latest.items()} | given
    book = build_book(settings, frame)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    triggers = dict(
        zip(
            *book.lot_triggers(now_ms).select("lot_id", "trigger_usd").to_dict().values(),
            strict=True,
        )
    )
    rows: list[tuple[str, ...]] = []
    unpriced: set[str] = set()
    for lot in frame.iter_rows(named=True):
        if (account and lot["account"] != account) or (asset and lot["asset"] != asset.upper()):
            continue
        price = last.get(lot["asset"])
        trigger = triggers.get(lot["lot_id"])
        value = lot["quantity"] * price if price is not None else None
        if price is None:
            unpriced.add(lot["asset"])
        rows.append(
            (
                lot["lot_id"],
                lot["account"],
                lot["wallet"],
                lot["asset"],
                _plain(lot["quantity"]),
                _cents(lot["cost_basis_usd"]),
                lot["acquired_at"].date().isoformat(),
                _plain(price) if price is not None else "-",
                _cents(value) if value is not None else "-",
                _cents(value - lot["cost_basis_usd"]) if value is not None else "-",
                _trigger(trigger) if trigger is not None else "never",
                _harvestable(price, trigger),
            )
        )
    if not rows and frame.height and (account or asset):
        _nothing_matches(frame, account, asset, settings.ledger.path)
    _print(rows, fmt)
    if not frame.height:
        click.echo(
            f"no open lots in {settings.ledger.path}: `harvest-monitor lots import FILE`", err=True
        )
    if unpriced:
        names = ", ".join(sorted(unpriced))
        click.echo(
            f"no known price for {names}: harvestable is unknown; give --price ASSET=USD "
            "(the default is the price of the asset's latest alert in the ledger)",
            err=True,
        )


def _harvestable(price: Decimal | None, trigger: float | None) -> str:
    """`yes` at or under the trigger, `no` above it or never, `unknown` without a price."""
    if trigger is None:
        return "no"
    if price is None:
        return "unknown"
    return "yes" if price <= Decimal(repr(trigger)) else "no"


def _trigger(trigger: float) -> str:
    """Cents from 1 USD up; six significant digits under (a 0.148096 trigger is not 0.15)."""
    return f"{trigger:.2f}" if trigger >= 1 else f"{trigger:.6g}"


def _held(frame: pl.DataFrame, column: str) -> str:
    names = sorted(set(frame[column].to_list()))
    return ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")


def _nothing_matches(
    frame: pl.DataFrame, account: str | None, asset: str | None, path: str
) -> None:
    """One line naming what is held instead, and exit 1."""
    if asset and asset.upper() not in set(frame["asset"].to_list()):
        message = (
            f"no open lot of asset {asset.upper()} in {path}; assets held: {_held(frame, 'asset')}"
        )
    elif account and account not in set(frame["account"].to_list()):
        message = f"no account {account!r} in {path}; accounts: {_held(frame, 'account')}"
    else:
        message = f"account {account!r} holds no open lot of {(asset or '').upper()} in {path}"
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _check_priced_assets(given: dict[str, Decimal], frame: pl.DataFrame, path: str) -> None:
    """--price for an asset the ledger has no open lot of is a typo: refuse it (exit 2)."""
    held = set(frame["asset"].to_list())
    unknown = sorted(set(given) - held)
    if unknown:
        fail(
            f"--price {', '.join(unknown)}: no open lot of {', '.join(unknown)} in {path}; "
            f"assets held: {_held(frame, 'asset') or 'none'}"
        )


ALLOW_FUTURE = click.option(
    "--allow-future",
    is_flag=True,
    help="Accept lots acquired after now (a buy recorded ahead); each joins the book at its "
    "acquisition time. Without it such a lot is a bad row.",
)


@lots.command(name="import")
@CONFIG
@click.argument("file", type=click.Path(dir_okay=False))
@ALLOW_FUTURE
def import_(config: str | None, file: str, allow_future: bool) -> None:
    """Import a portfolio CSV into the ledger, idempotent by lot_id.

    Columns: lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at. A lot
    already imported with the same values is skipped; one with other values, or any
    bad row, stops the import (nothing is added) with `file:line: field: problem`.
    """
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger
    from monitor.progress import Phases

    settings = settings_or_exit(config)
    try:
        ledger = Ledger.from_settings(settings).open()
        try:
            with Phases("lots") as progress:
                result = ledger.import_lots(file, progress, allow_future=allow_future)
        finally:
            ledger.close()
    except MonitorError as exc:
        fail(str(exc))
        return
    batch = f" (import batch {result.batch})" if result.batch is not None else ""
    removed = f", {result.removed} removed earlier (not added again)" if result.removed else ""
    click.echo(
        f"{file}: {result.added} lots added{batch}, {result.unchanged} already in "
        f"{settings.ledger.path}{removed}",
        err=True,
    )


@lots.command(name="remove")
@CONFIG
@click.argument("lot_ids", nargs=-1)
@click.option(
    "--batch",
    type=int,
    default=None,
    help="Remove every lot this import batch added (see `lots batches`).",
)
@click.option(
    "--reason",
    default="imported by mistake",
    show_default=True,
    help="Why, kept with the removal in the ledger.",
)
def remove(config: str | None, lot_ids: tuple[str, ...], batch: int | None, reason: str) -> None:
    """Remove lots imported by mistake, by LOT_ID or by import --batch.

    A removed lot leaves the book (a running monitor drops it at its next start, and
    never trades it meanwhile); the ledger keeps the lot and a removal record (what was
    open, the reason, the time). Only imported lots with no sale recorded can be
    removed; one that cannot stops the whole removal, naming it.
    """
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger

    if not lot_ids and batch is None:
        fail(
            "name the lots to remove: LOT_ID ... or --batch N (see `harvest-monitor lots batches`)"
        )
    settings = settings_or_exit(config)
    try:
        ledger = Ledger.from_settings(settings).open()
        try:
            count = ledger.remove_lots(lot_ids, batch=batch, reason=reason)
        finally:
            ledger.close()
    except MonitorError as exc:
        fail(str(exc))
        return
    click.echo(f"{count} lot(s) removed from {settings.ledger.path} ({reason})", err=True)


@lots.command(name="batches")
@CONFIG
def batches(config: str | None) -> None:
    """Each `lots import` that added lots: its batch number, file, time and what is left."""
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger

    settings = settings_or_exit(config)
    try:
        ledger = Ledger(ledger_to_read(settings)).open()
        try:
            found = ledger.import_batches()
        finally:
            ledger.close()
    except MonitorError as exc:
        fail(str(exc))
        return
    rows = [
        (str(b.batch), b.imported_at, str(b.lots), str(b.open), str(b.removed), b.file)
        for b in found
    ]
    _print(rows, "table", ("batch", "imported_at", "lots", "open", "removed", "file"))


def _parse_prices(items: tuple[str, ...]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for item in items:
        asset, sep, text = item.partition("=")
        try:
            price = Decimal(text)
        except InvalidOperation:
            price = Decimal(-1)
        if not sep or not asset or not price.is_finite() or price <= 0:
            fail(f"--price {item!r}: expected ASSET=USD, e.g. BTC=43000.50")
        out[asset.strip().upper()] = price
    return out


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _cents(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _print(rows: Sequence[Sequence[str]], fmt: str, columns: Sequence[str] = COLUMNS) -> None:
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for line in (columns, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
