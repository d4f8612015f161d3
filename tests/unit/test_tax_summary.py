"""The year-end summary by hand, and `harvest-monitor tax summary / do-not-buy` on a
disposals file (rates 0.37 / 0.20, ordinary 0.37, carryforward worth 0.5)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.errors import DisposalSourceError
from monitor.settings import load_settings
from monitor.tax.disposal import Disposal
from monitor.tax.rules import Position, TaxRules, tax_rules
from monitor.tax.sources import read_disposals_csv
from monitor.tax.summary import summarize


def rules(jurisdiction: str = "us", **tax: object) -> TaxRules:
    overrides = {"tax.jurisdiction": jurisdiction, **{f"tax.{k}": v for k, v in tax.items()}}
    return tax_rules(load_settings(overrides=overrides).tax)


def sale(
    lot: str, sold: date, proceeds: int, basis: int, term: str, harvest: bool, disallowed: int = 0
) -> Disposal:
    return Disposal(
        lot, "acct", "w", lot[:3], D(1), date(2024, 1, 1), sold, D(proceeds), D(basis),
        "short" if term == "short" else "long", harvest=harvest,
        disallowed_loss_usd=D(disallowed),
    )  # fmt: skip


YEAR = [
    sale("BTC1", date(2026, 2, 1), 15000, 10000, "short", False),  # +5,000 short
    sale("ETH1", date(2026, 5, 1), 2000, 12000, "short", True),  # -10,000 short, harvest
    sale("SOL1", date(2026, 9, 1), 1000, 3000, "long", True, disallowed=500),  # -1,500 long
    sale("ADA1", date(2025, 12, 31), 100, 900, "short", True),  # another year
]


def test_us_year_with_the_cap_and_carryforward() -> None:
    """s = 5,000 - 10,000 = -5,000; l = -1,500: net loss 6,500. 3,000 offsets ordinary
    income (0.37 -> 1,110 saved), short first: carry short 2,000, long 1,500.
    Without the harvests: 5,000 short at 0.37 = 1,850 of tax. Saved 1,850 + 1,110 =
    2,960, plus the carry worth 0.5 * (2,000 * 0.37 + 1,500 * 0.20) = 520."""
    s = summarize(rules(), YEAR, 2026).as_dict()
    assert s["disposals"] == 3 and s["harvests"] == 2
    assert (s["short_term_gains_usd"], s["short_term_losses_usd"]) == ("5000.00", "10000.00")
    assert (s["long_term_losses_usd"], s["disallowed_losses_usd"]) == ("1500.00", "500.00")
    assert s["harvested_losses_usd"] == "11500.00"
    assert (s["ordinary_income_offset_usd"], s["tax_usd"]) == ("3000.00", "-1110.00")
    assert (s["carryforward_short_usd"], s["carryforward_long_usd"]) == ("2000.00", "1500.00")
    assert (s["tax_saved_usd"], s["carryforward_value_usd"], s["estimated_tax_saved_usd"]) == (
        "2960.00",
        "520.00",
        "3480.00",
    )


def test_us_married_filing_separately_and_a_carried_in_loss() -> None:
    """Carried in 1,000 short: s = -6,000, l = -1,500; the cap is 1,500 (MFS):
    carry short 4,500, long 1,500; without harvests s = 4,000 -> 1,480."""
    r = rules(filing_status="married_separate")
    s = summarize(r, YEAR, 2026, Position(carry_short=D(1000))).as_dict()
    assert (s["ordinary_income_offset_usd"], s["tax_usd"]) == ("1500.00", "-555.00")
    assert (s["carryforward_short_usd"], s["carryforward_long_usd"]) == ("4500.00", "1500.00")
    assert s["tax_saved_usd"] == "2035.00"  # 1,480 + 555


def test_uk_tax_year_runs_from_6_april() -> None:
    early = sale("BTC2", date(2026, 4, 5), 100, 600, "short", True)
    late = sale("BTC3", date(2026, 4, 6), 100, 900, "short", True)
    assert summarize(rules("uk"), [early, late], 2025).harvested_losses == 500
    assert summarize(rules("uk"), [early, late], 2026).harvested_losses == 800


def write_csv(path: Path, rows: list[Disposal]) -> None:
    lines = [
        "lot_id,account,wallet,asset,quantity,acquired_on,sold_on,proceeds_usd,"
        "cost_basis_usd,term,harvest,disallowed_loss_usd"
    ]
    for d in rows:
        lines.append(
            f"{d.lot_id},{d.account},{d.wallet},{d.asset},{d.quantity},{d.acquired_on},"
            f"{d.sold_on},{d.proceeds_usd},{d.cost_basis_usd},{d.term},"
            f"{str(d.harvest).lower()},{d.disallowed_loss_usd}"
        )
    path.write_text("\n".join(lines) + "\n")


def test_disposals_csv_round_trip(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", YEAR)
    assert read_disposals_csv(tmp_path / "d.csv") == YEAR


def test_disposals_csv_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", YEAR)
    text = (tmp_path / "d.csv").read_text().replace("15000,10000,short", "15000,10000,medium")
    (tmp_path / "d.csv").write_text(text)
    with pytest.raises(DisposalSourceError, match=r"d.csv:2: term: 'medium'"):
        read_disposals_csv(tmp_path / "d.csv")


def test_tax_summary_command(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", YEAR)
    args = ["tax", "summary", "--year", "2026", "--disposals", str(tmp_path / "d.csv")]
    done = CliRunner().invoke(main, [*args, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["estimated_tax_saved_usd"] == "3480.00"
    text = CliRunner().invoke(main, args)
    assert "ordinary income offset" in text.output and "3000.00" in text.output


def test_do_not_buy_command(tmp_path: Path) -> None:
    write_csv(tmp_path / "d.csv", YEAR)
    config = tmp_path / "m.toml"
    config.write_text('[tax]\njurisdiction = "ca"\n')
    done = CliRunner().invoke(
        main,
        ["tax", "do-not-buy", "--on", "2026-05-10", "--config", str(config),
         "--disposals", str(tmp_path / "d.csv")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        "acct\tETH\tuntil 2026-06-01\t(harvested 2026-05-01, loss 10000.00)"
    ]


def test_missing_ledger_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text(f'[ledger]\npath = "{tmp_path / "none.sqlite"}"\n')
    done = CliRunner().invoke(main, ["tax", "summary", "--config", str(config)])
    assert done.exit_code == 2
    assert "ledger file not found" in done.output


def test_position_after_realized_disposals_for_the_ytd_model() -> None:
    pos = Position(short_gains=D(100)).realize(YEAR[:3])
    assert (pos.short_gains, pos.short_losses, pos.long_gains, pos.long_losses) == (
        D(5100),
        D(10000),
        D(0),
        D(1500),  # 2,000 less the 500 disallowed
    )


def test_tax_summary_reads_the_ledger(tmp_path: Path) -> None:
    from monitor.ledger import Ledger

    path = tmp_path / "l.sqlite"
    Ledger(path).open().close()  # a fresh ledger: schema, no disposals yet
    config = tmp_path / "m.toml"
    config.write_text(f'[ledger]\npath = "{path}"\n')
    done = CliRunner().invoke(
        main, ["tax", "summary", "--year", "2026", "--json", "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    assert (json.loads(done.output)["disposals"], json.loads(done.output)["tax_usd"]) == (0, "0.00")


def test_summary_and_form_8949_rows_agree_to_the_cent() -> None:
    """One rounding rule: Form 8949 rounds each row to the cent and adds the rows; the
    summary totals the same rounded rows. Three sales for 10.004 with a basis of 20 (a
    9.996 loss each): rows of 10.00 - 20.00 = -10.00, so 30.00 of losses, not the 29.99
    the exact sum (29.988) would round to. A gain row never carries a disallowed loss."""
    from monitor.ledger.form8949 import rows_of, totals_of

    rows = [
        Disposal(f"L{i}", "acct", "w", "BTC", D(1), date(2026, 1, 1), date(2026, 3, 1),
                 D("10.004"), D(20), "short", harvest=True)
        for i in range(3)
    ]  # fmt: skip
    year = summarize(rules(), rows, 2026)
    (box,) = totals_of(rows_of(rows))
    assert (year.short_losses, year.harvested_losses, box.gain_or_loss) == (
        D("30.00"),
        D("30.00"),
        D("-30.00"),
    )
