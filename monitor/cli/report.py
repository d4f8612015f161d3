"""`harvest-monitor report harvests`: the realized harvests of a year as Form 8949 rows."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import cast

import click

from monitor.cli import main
from monitor.cli.runner import fail, ledger_to_read, settings_or_exit

TAX_YEAR_HELP = (
    "Tax year, as the [tax] jurisdiction names it: us, ca, de the calendar year; uk "
    "the year it starts in (2025 = 2025/26, 6 April 2025 to 5 April 2026); au the year it "
    "ends in (2025 = 2024-25, 1 July 2024 to 30 June 2025). Default: the current one. "
    "`harvest-monitor tax packs` shows each pack's year."
)


@main.group()
def report() -> None:
    """Reports from the ledger."""


@report.command()
@click.option("--tax-year", "--year", "year", type=int, default=None, help=TAX_YEAR_HELP)
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
    help="TOML settings ([ledger] path; [tax] jurisdiction names the tax year).",
)
def harvests(
    year: int | None, fmt: str, reporting: str, everything: bool, config: str | None
) -> None:
    """Realized harvests as Form 8949 rows (CSV on stdout, totals per box on stderr).

    One row per lot sold (a lot sold in two harvests gives two rows), as the rule pack
    booked it (the last column says how: s104, same_day, bed_and_breakfast, superficial
    loss, wash sale). Amounts are the ledger's exact amounts rounded to the cent once;
    gain or loss is proceeds minus basis plus the adjustment (code W: a disallowed
    loss), and each box's totals are the sums of its rows: `tax summary` totals the same
    rounded rows, so the two agree to the cent.
    """
    from monitor.errors import MonitorError
    from monitor.ledger import Ledger
    from monitor.ledger.form8949 import Reporting, rows_of, totals_of, write_csv
    from monitor.tax.rules import tax_rules

    settings = settings_or_exit(config)
    try:
        rules = tax_rules(settings.tax)
        ledger = Ledger(ledger_to_read(settings)).open()
    except MonitorError as exc:
        fail(str(exc))
        return
    chosen = year if year is not None else rules.tax_year(datetime.now(UTC).date())
    first, last = rules.tax_year_bounds(chosen)
    try:
        disposals = [
            d
            for d in ledger.disposals()
            if first <= d.sold_on <= last and (everything or d.harvest)
        ]
    finally:
        ledger.close()
    click.echo(
        f"tax year {rules.tax_year_label(chosen)} ({first.isoformat()} to {last.isoformat()}), "
        f"pack {rules.name}",
        err=True,
    )
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
        click.echo(
            f"no realized harvests in tax year {rules.tax_year_label(chosen)} in "
            f"{settings.ledger.path}",
            err=True,
        )
