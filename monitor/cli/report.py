"""`harvest-monitor report harvests`: the realized harvests of a year as Form 8949 rows."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import cast

import click

from monitor.cli import main
from monitor.cli.runner import fail, settings_or_exit


@main.group()
def report() -> None:
    """Reports from the ledger."""


@report.command()
@click.option(
    "--year",
    type=int,
    default=None,
    help="Tax year (by date sold; default: the current UTC year).",
)
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option(
    "--form-1099-da",
    "reporting",
    type=click.Choice(["none", "proceeds", "basis"]),
    default="none",
    show_default=True,
    help="What the broker reported on Form 1099-DA: none (boxes I/L), proceeds only "
    "(H/K), proceeds and basis (G/J).",
)
@click.option("--all", "everything", is_flag=True, help="Every disposal, not only harvests.")
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TOML settings ([ledger] path).",
)
def harvests(
    year: int | None, fmt: str, reporting: str, everything: bool, config: str | None
) -> None:
    """Realized harvests as Form 8949 rows (CSV on stdout, totals per box on stderr).

    One row per lot sold (a lot sold in two harvests gives two rows). Amounts are the
    ledger's exact amounts rounded to the cent once; gain or loss is proceeds minus
    basis plus the adjustment (code W: a wash-sale disallowed loss), and each box's
    totals are the sums of its rows.
    """
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger
    from monitor.ledger.form8949 import Reporting, rows_of, totals_of, write_csv

    settings = settings_or_exit(config)
    chosen = year if year is not None else datetime.now(UTC).year
    try:
        ledger = Ledger(settings.ledger.path).open()
    except MonitorError as exc:
        fail(str(exc))
        return
    try:
        disposals = [d for d in ledger.disposals(chosen) if everything or d.harvest]
    finally:
        ledger.close()
    rows = rows_of(disposals, cast(Reporting, reporting))
    write_csv(rows, sys.stdout)
    for t in totals_of(rows):
        click.echo(
            f"box {t.box}: {t.rows} rows, proceeds {t.proceeds:.2f}, cost basis "
            f"{t.cost_basis:.2f}, adjustment {t.adjustment:.2f}, gain or loss "
            f"{t.gain_or_loss:.2f}",
            err=True,
        )
    if not rows:
        click.echo(f"no realized harvests in {chosen} in {settings.ledger.path}", err=True)
