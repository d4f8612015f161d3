"""Where lots come from: only `demo` uses example data; every other command needs yours.

Run through the real CLI as a subprocess, from the repository (where the example file
used to be picked up behind the user's back) and from an unrelated directory.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lot_count(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with sqlite3.connect(ledger) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM lots").fetchone()[0])


@pytest.mark.parametrize("command", ["run", "detect"])
def test_no_portfolio_and_an_empty_ledger_is_an_error_not_the_example(
    tmp_path: Path, command: str
) -> None:
    ledger = tmp_path / "mine.sqlite"
    config = tmp_path / "my.toml"
    kafka = '[kafka]\nbootstrap_servers = "127.0.0.1:9"\n' if command == "detect" else ""
    config.write_text(f'[ledger]\npath = "{ledger}"\n{kafka}')
    done = cli(command, "--config", str(config), "--duration", "1", cwd=REPO)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: no lots to watch"), done.stderr
    assert "harvest-monitor lots import FILE" in errors[0]
    assert "Traceback" not in done.stderr
    assert lot_count(ledger) == 0  # the example portfolio was not imported


def test_ingest_without_portfolio_or_symbols_says_what_to_set(tmp_path: Path) -> None:
    config = tmp_path / "my.toml"
    config.write_text('[kafka]\nbootstrap_servers = "127.0.0.1:9"\n')
    done = cli("ingest", "--config", str(config), "--duration", "1", cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: ingest derives its symbols from the portfolio: set [portfolio] path, "
        "or list [[feeds]] symbols"
    )


@pytest.mark.timeout(120)
def test_demo_runs_from_any_directory_and_keeps_example_lots_out_of_your_ledger(
    tmp_path: Path,
) -> None:
    """From a directory with no config/ in it, with [ledger] path set to the user's own
    ledger: the demo watches the packaged example on a temporary ledger."""
    mine = tmp_path / "mine.sqlite"
    config = tmp_path / "my.toml"
    config.write_text(f'[ledger]\npath = "{mine}"\n[metrics]\nport = 0\n')
    done = cli("demo", "--duration", "10", "--json", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("{")], done.stderr[-2000:]
    assert lot_count(mine) == 0
