"""`harvest-monitor tax ...`: the year-end summary, the do-not-buy list, the rule packs."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import click

from monitor.cli import main
from monitor.cli.report import TAX_YEAR_HELP
from monitor.cli.runner import fail, settings_or_exit
from monitor.errors import MonitorError
from monitor.tax.disposal import Disposal
from monitor.tax.rules import Position, TaxRules, tax_rules

CONFIG = click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TOML settings ([tax] picks the rule pack; [ledger] path the ledger).",
)
DISPOSALS = click.option(
    "--disposals",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read disposals from this CSV (Disposal fields as header) instead of the ledger.",
)


@main.group()
def tax() -> None:
    """Tax views: the year's summary, the do-not-buy list, the jurisdiction rule packs.

    Not tax advice: the figures follow the rule pack's model (docs/tax.md).
    """


def _load(config: str | None, disposals: str | None) -> tuple[TaxRules, list[Disposal]]:
    from monitor.tax.sources import ledger_disposals, read_disposals_csv

    settings = settings_or_exit(config)
    try:
        rules = tax_rules(settings.tax)
        found = read_disposals_csv(disposals) if disposals else ledger_disposals(settings)
    except MonitorError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits
    return rules, found


def _today() -> date:
    return datetime.now(UTC).date()


@tax.command()
@click.option("--tax-year", "--year", "year", type=int, default=None, help=TAX_YEAR_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@CONFIG
@DISPOSALS
def summary(year: int | None, as_json: bool, config: str | None, disposals: str | None) -> None:
    """Realized gains and losses of a tax year, netted by the pack; the tax harvests saved.

    Prints short/long gains and losses, harvested and disallowed losses, the ordinary
    income offset, the carryforward and the estimated tax saved. Totals are sums of the
    rows rounded to the cent, as `report harvests` (Form 8949) adds them. For the current tax
    year the [tax] ytd_* gains (realized outside the ledger) and carryforward_* count
    too; other years start from nothing.
    """
    from monitor.tax.summary import summarize

    rules, found = _load(config, disposals)
    current = rules.tax_year(_today())
    chosen = current if year is None else year
    start = rules.start if chosen == current else Position()
    result = summarize(rules, found, chosen, start)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo("\n".join(result.lines()))


@tax.command("do-not-buy")
@click.option("--account", default=None, help="Only this account.")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="As of this day (default: today).",
)
@CONFIG
@DISPOSALS
def do_not_buy(
    account: str | None, on: datetime | None, config: str | None, disposals: str | None
) -> None:
    """Assets not to buy back yet, per account, after harvests in a pack with a window."""
    from monitor.tax.windows import DoNotBuyList

    rules, found = _load(config, disposals)
    day = on.date() if on is not None else _today()
    entries = DoNotBuyList.from_disposals(rules, found).entries(day, account)
    if not entries:
        click.echo(f"nothing on the do-not-buy list on {day.isoformat()} (pack {rules.name})")
        return
    for e in entries:
        click.echo(
            f"{e.account}\t{e.asset}\tuntil {e.until.isoformat()}\t"
            f"(harvested {e.sold_on.isoformat()}, loss {e.loss_usd:.2f})"
        )


@tax.command()
def packs() -> None:
    """The jurisdiction rule packs available and their main rules."""
    from monitor.tax.packs import available_packs, load_pack

    for name in available_packs():
        try:
            p = load_pack(name)
        except MonitorError as exc:
            click.echo(f"{name}\tinvalid: {exc}")
            continue
        click.echo(
            f"{p.name}\t{p.title}: holding period {p.holding_period}, netting {p.netting}, "
            f"basis {p.basis}, window {p.window_days} days, rebuy wait {p.rebuy_wait_days} days, "
            f"tax year from {p.tax_year_starts} named by the year it {p.tax_year_named_by}s"
        )
