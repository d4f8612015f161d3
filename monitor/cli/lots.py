"""`harvest-monitor lots`: the ledger's open lots; `lots import FILE` loads a portfolio."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import click

from monitor.cli import main
from monitor.cli.runner import fail, settings_or_exit

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
    [tax]); a lot is harvestable when the last price is at or under it. The last
    price of an asset is --price, else the price of its latest alert in the ledger.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.book import build_book
    from monitor.ledger import Ledger

    settings = settings_or_exit(config)
    given = _parse_prices(prices)
    ledger = Ledger(settings.ledger.path).open()
    try:
        frame = ledger.open_lots()
        latest = ledger.alerts.latest_prices()
    finally:
        ledger.close()
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
    for lot in frame.iter_rows(named=True):
        if (account and lot["account"] != account) or (asset and lot["asset"] != asset.upper()):
            continue
        price = last.get(lot["asset"])
        trigger = triggers.get(lot["lot_id"])
        value = lot["quantity"] * price if price is not None else None
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
                f"{trigger:.2f}" if trigger is not None else "never",
                "yes"
                if price is not None and trigger is not None and price <= Decimal(repr(trigger))
                else "no",
            )
        )
    _print(rows, fmt)
    if not frame.height:
        click.echo(
            f"no open lots in {settings.ledger.path}: `harvest-monitor lots import FILE`", err=True
        )


@lots.command(name="import")
@CONFIG
@click.argument("file", type=click.Path(dir_okay=False))
def import_(config: str | None, file: str) -> None:
    """Import a portfolio CSV into the ledger, idempotent by lot_id.

    Columns: lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at. A lot
    already imported with the same values is skipped; one with other values, or any
    bad row, stops the import (nothing is added) with `file:line: field: problem`.
    """
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger

    settings = settings_or_exit(config)
    try:
        ledger = Ledger(settings.ledger.path).open()
        try:
            result = ledger.import_lots(file)
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
        ledger = Ledger(settings.ledger.path).open()
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
        ledger = Ledger(settings.ledger.path).open()
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
