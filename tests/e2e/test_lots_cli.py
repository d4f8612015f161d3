"""`harvest-monitor lots import FILE` and `harvest-monitor lots` on a real ledger file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.ledger import Ledger

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def cli(tmp_path: Path, *args: str) -> Result:
    env = {"HM_LEDGER__PATH": str(tmp_path / "ledger.sqlite")}
    return CliRunner().invoke(main, list(args), env=env)


def test_import_twice_adds_once(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(
        HEADER + "L1,a,w,BTC,1,60000,2025-03-01\nL2,a,w,ETH,2,8000.50,2024-01-10\n",
        encoding="utf-8",
    )
    first = cli(tmp_path, "lots", "import", str(csv_path))
    again = cli(tmp_path, "lots", "import", str(csv_path))
    assert first.exit_code == 0 and "2 lots added (import batch 1), 0 already in" in first.stderr
    assert again.exit_code == 0 and "0 lots added, 2 already in" in again.stderr
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    assert ledger.open_lots()["lot_id"].to_list() == ["L1", "L2"]


def test_bad_rows_and_changed_lots_are_refused_with_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "L1,a,w,BTC,1,60000,2025-03-01\n", encoding="utf-8")
    assert cli(tmp_path, "lots", "import", str(good)).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "L2,a,w,ETH,1,100,2025-01-01\nL3,a,,SOL,abc,5,2025-01-01\n")
    result = cli(tmp_path, "lots", "import", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3: wallet: is empty" in result.stderr
    assert f"{bad}:3: quantity: 'abc' is not a decimal number" in result.stderr
    changed = tmp_path / "changed.csv"
    changed.write_text(HEADER + "L9,a,w,ETH,1,100,2025-01-01\nL1,a,w,BTC,1,59000,2025-03-01\n")
    result = cli(tmp_path, "lots", "import", str(changed))
    assert result.exit_code == 2
    assert f"{changed}:3: lot_id: 'L1' is already in the ledger with cost_basis_usd 60000" in (
        result.stderr
    )
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    assert ledger.open_lots()["lot_id"].to_list() == ["L1"]  # nothing of either file added


def test_listing_shows_unrealized_pnl_and_triggers(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    # 1 BTC at 60000, short-term: loss >= 100, >= 5% (57000), net of 0.3% costs at 37%:
    # 0.37 * (60000 - p) - 0.003 * p >= 25 -> p <= 59450.40; the trigger is the lowest, 57000.
    csv_path.write_text(HEADER + "L1,a,w,BTC,1,60000,2026-01-02\nL2,a,w,ETH,2,4000,2026-01-02\n")
    assert cli(tmp_path, "lots", "import", str(csv_path)).exit_code == 0
    result = cli(tmp_path, "lots", "--price", "BTC=50000", "--price", "ETH=2100", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["lot_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["L1"]["unrealized_usd"] == "-10000.00"
    assert rows["L1"]["trigger_usd"] == "57000.00"
    assert rows["L1"]["harvestable"] == "yes"
    assert rows["L2"]["value_usd"] == "4200.00"
    assert rows["L2"]["unrealized_usd"] == "200.00"
    assert rows["L2"]["harvestable"] == "no"
    bad = cli(tmp_path, "lots", "--price", "BTC")
    assert bad.exit_code == 2 and "expected ASSET=USD" in bad.stderr


def test_remove_by_batch_and_by_id_from_the_command_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text(HEADER + "L1,a,w,BTC,1,60000,2025-03-01\nL2,a,w,ETH,1,3000,2025-03-01\n")
    example = tmp_path / "example.csv"
    example.write_text(HEADER + "X1,a,w,SOL,1,100,2025-03-01\n")
    assert "(import batch 1)" in cli(tmp_path, "lots", "import", str(mine)).stderr
    assert "(import batch 2)" in cli(tmp_path, "lots", "import", str(example)).stderr
    listed = cli(tmp_path, "lots", "batches")
    assert listed.exit_code == 0 and str(example) in listed.stdout
    assert cli(tmp_path, "lots", "remove", "--batch", "2").exit_code == 0
    done = cli(tmp_path, "lots", "remove", "L2", "--reason", "sold on another exchange")
    assert done.exit_code == 0 and "1 lot(s) removed" in done.stderr
    again = cli(tmp_path, "lots", "remove", "L2")
    assert again.exit_code == 2 and "lot 'L2' was removed already" in again.stderr
    lines = again.stderr.strip().splitlines()  # one problem, one line
    assert len(lines) == 1 and lines[0].startswith("error: nothing removed: lot 'L2' was removed")
    nothing = cli(tmp_path, "lots", "remove")
    assert nothing.exit_code == 2 and "--batch" in nothing.stderr
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    assert ledger.open_lots()["lot_id"].to_list() == ["L1"]


def test_without_a_price_harvestable_is_unknown_not_no(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(HEADER + "L1,a,w,BTC,1,60000,2026-01-02\nL2,a,w,DOGE,1000,200,2026-01-02\n")
    assert cli(tmp_path, "lots", "import", str(csv_path)).exit_code == 0
    result = cli(tmp_path, "lots", "--price", "BTC=50000", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["lot_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["L1"]["harvestable"] == "yes"
    assert rows["L2"]["price_usd"] == "-" and rows["L2"]["harvestable"] == "unknown"
    assert "no known price for DOGE: harvestable is unknown" in result.stderr
    # DOGE at 0.20 a coin, short-term: 5% under is 0.19; 0.37*(200-1000p) - 0.003*1000p >= 25
    # -> p <= 0.13137; loss >= 100 -> p <= 0.10: the trigger is the lowest, 0.1 (not "0.10").
    assert rows["L2"]["trigger_usd"] == "0.1"


def test_an_asset_or_account_that_matches_nothing_says_so(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(HEADER + "L1,a,w,BTC,1,60000,2026-01-02\nL2,b,w,ETH,2,4000,2026-01-02\n")
    assert cli(tmp_path, "lots", "import", str(csv_path)).exit_code == 0
    result = cli(tmp_path, "lots", "--asset", "solana")
    assert result.exit_code == 1 and result.stdout == ""
    assert "no open lot of asset SOLANA" in result.stderr
    assert "assets held: BTC, ETH" in result.stderr
    result = cli(tmp_path, "lots", "--account", "c")
    assert result.exit_code == 1 and "no account 'c'" in result.stderr
    assert "accounts: a, b" in result.stderr
    result = cli(tmp_path, "lots", "--account", "a", "--asset", "eth")
    assert result.exit_code == 1 and "account 'a' holds no open lot of ETH" in result.stderr
    assert cli(tmp_path, "lots", "--asset", "eth").exit_code == 0


def test_a_price_for_an_asset_not_held_is_refused(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(HEADER + "L1,a,w,BTC,1,60000,2026-01-02\n")
    assert cli(tmp_path, "lots", "import", str(csv_path)).exit_code == 0
    result = cli(tmp_path, "lots", "--price", "BTC=50000", "--price", "BTCC=50000")
    assert result.exit_code == 2 and result.stdout == ""
    assert "--price BTCC: no open lot of BTCC" in result.stderr
    assert "assets held: BTC" in result.stderr


def test_a_lot_acquired_in_the_future_needs_allow_future(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text(HEADER + "L1,a,w,BTC,1,60000,2025-03-01\nL2,a,w,BTC,1,60000,2099-01-01\n")
    refused = cli(tmp_path, "lots", "import", str(csv_path))
    assert refused.exit_code == 2
    assert f"{csv_path}:3: acquired_at: 2099-01-01T00:00:00+00:00 is in the future" in (
        refused.stderr
    )
    assert "--allow-future" in refused.stderr
    accepted = cli(tmp_path, "lots", "import", "--allow-future", str(csv_path))
    assert accepted.exit_code == 0 and "2 lots added" in accepted.stderr
