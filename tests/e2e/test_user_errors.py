"""User mistakes end in one clear line and a non-zero exit, never a traceback.

Each case runs the real command line as a subprocess, as a user would meet it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.examples import PORTFOLIO, TICKS, example_path

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line of a failed command (and no traceback)."""
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-2000:]
    return errors[0]


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[list[Path]]:
    """Files made immutable with chattr (read-only even for root), undone afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: a read-only file cannot be made for root")
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def make_immutable(path: Path, made: list[Path]) -> None:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here ({done.stderr.strip()})")
    made.append(path)


def test_a_latin1_portfolio_names_the_line_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(
        (HEADER + "L1,a,w,BTC,1,60000,2025-03-01\nL2,a,caf\xe9,BTC,1,1,2025-03-01\n").encode(
            "latin-1"
        )
    )
    done = cli("lots", "import", str(path), env={"HM_LEDGER__PATH": str(tmp_path / "l.sqlite")})
    assert done.returncode == 2
    assert one_error(done) == (
        f"error: {path}:3: encoding: byte 0xe9 is not UTF-8 (a Latin-1 or Windows-1252 "
        "export?); save the file as 'CSV UTF-8' and import that"
    )


def test_a_utf16_portfolio_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "L1,a,w,BTC,1,60000,2025-03-01\n", encoding="utf-16")
    ticks = str(example_path(TICKS))
    done = cli("replay", "--portfolio", str(path), "--ticks", ticks)
    assert done.returncode == 2
    assert one_error(done).startswith(f"error: {path}:1: encoding: the file is UTF-16")


def test_a_corrupt_ledger_for_lots(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    ledger.write_text("these are not the lots you are looking for\n" * 100)
    done = cli("lots", env={"HM_LEDGER__PATH": str(ledger)})
    assert done.returncode == 2
    assert one_error(done).startswith(
        f"error: {ledger}: not a harvest-monitor ledger or damaged (file is not a database)"
    )


def test_a_read_only_ledger_for_lots(tmp_path: Path, immutable: list[Path]) -> None:
    """Listing reads only, so it works; importing into it says the ledger is read-only."""
    ledger = tmp_path / "ledger.sqlite"
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + "L1,a,w,BTC,1,60000,2025-03-01\n")
    env = {"HM_LEDGER__PATH": str(ledger)}
    assert cli("lots", "import", str(csv), env=env).returncode == 0
    make_immutable(ledger, immutable)
    listed = cli("lots", env=env)
    assert listed.returncode == 0 and "L1" in listed.stdout, listed.stderr
    more = tmp_path / "more.csv"
    more.write_text(HEADER + "L2,a,w,BTC,1,60000,2025-03-02\n")
    done = cli("lots", "import", str(more), env=env)
    assert done.returncode == 2
    assert one_error(done).startswith(f"error: {ledger}: the ledger is read-only")
    removed = cli("lots", "remove", "L1", env=env)
    assert one_error(removed).startswith(f"error: {ledger}: the ledger is read-only")


def test_an_unwritable_alerts_out(tmp_path: Path, immutable: list[Path]) -> None:
    out = tmp_path / "alerts.jsonl"
    out.write_text("")
    make_immutable(out, immutable)
    done = cli("replay", "--example", "--alerts-out", str(out))
    assert done.returncode == 2
    assert (
        one_error(done) == f"error: --alerts-out {out}: cannot replace it (Operation not permitted)"
    )


def test_alerts_out_where_no_file_can_be(tmp_path: Path) -> None:
    out = "/proc/harvest-monitor-alerts.jsonl"  # /proc takes no new files, even from root
    done = cli("replay", "--example", "--alerts-out", out)
    assert done.returncode == 2
    assert one_error(done).startswith(f"error: {out}: cannot write alerts there")


def test_a_metrics_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("demo", "--duration", "5", "--metrics-port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    assert one_error(done).startswith(f"error: cannot serve /metrics on 127.0.0.1:{port}")


def test_alerts_tail_that_cannot_connect_exits_non_zero() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    url = f"ws://127.0.0.1:{port}/alerts"
    done = cli("alerts", "tail", "--url", url, "--no-reconnect", env={"HM_ALERTS_TOKEN": "t"})
    assert done.returncode == 1
    assert one_error(done).startswith(f"error: {url}: cannot connect:")
    assert done.stderr.strip().splitlines() == [one_error(done)]  # said once, not twice


@pytest.mark.parametrize(
    "command",
    [
        ("lots",),
        ("lots", "batches"),
        ("report", "harvests"),
        ("tax", "summary"),
        ("alerts", "dead-letters", "--config", "m.toml"),
        ("alerts", "redeliver", "--config", "m.toml"),
    ],
)
def test_reading_a_ledger_that_is_not_there_says_so_and_creates_none(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Run from a directory without the ledger (no --config): one line naming the path,
    not an empty listing from a ledger made on the spot."""
    (tmp_path / "m.toml").write_text("[log]\nlevel = 'info'\n")  # [ledger] path by default
    done = cli(*command, cwd=tmp_path)
    assert done.returncode == 2
    assert one_error(done).startswith("error: var/ledger.sqlite: ")
    assert not (tmp_path / "var").exists()


def test_a_replay_where_no_line_is_a_tick_fails(tmp_path: Path) -> None:
    """The arguments swapped (the portfolio as --ticks): not a success with 0 ticks."""
    portfolio = str(example_path(PORTFOLIO))
    done = cli("replay", "--portfolio", portfolio, "--ticks", portfolio, cwd=tmp_path)
    assert done.returncode == 2
    assert one_error(done).startswith(f"error: {portfolio}: not one line is a tick (361 rejected)")
    one_bad = tmp_path / "ticks.jsonl"  # a bad line among good ones is skipped, as before
    one_bad.write_text(example_path(TICKS).read_text() + "not json\n")
    done = cli("replay", "--portfolio", portfolio, "--ticks", str(one_bad), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-500:]
