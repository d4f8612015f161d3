"""Two daemons on one ledger, as real processes: the second is refused, naming the first.

`harvest-monitor run` (paper execution, a websocket subscription server) runs against a
simulated Binance on loopback. A second `run` on the same ledger exits at once with one
line naming the holder (role, pid, host) and no traceback; `lots`, `tax summary`, `report
harvests` and `alerts tail` work while the first runs. After the first is killed (-9), a
new `run` takes the lock over at once (same host, pid gone) and stops cleanly.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.alerts.tokens import new_token, token_hash
from streams.simulator.binance import BinanceSimulator
from tests.ops.live_prometheus import free_port

REPO = Path(__file__).parents[2]
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
R1,acct-1,w-1,BTC,0.5,80000,2026-09-01
R2,acct-2,w-2,BTC,1,150000,2026-08-15
R3,acct-1,w-1,ETH,1,1000,2026-01-01
"""


def config(tmp: Path, sim_url: str, ws_port: int, token: str) -> Path:
    (tmp / "portfolio.csv").write_text(PORTFOLIO, encoding="utf-8")
    path = tmp / "monitor.toml"
    path.write_text(
        f"""
[portfolio]
path = "{tmp / "portfolio.csv"}"

[ledger]
path = "{tmp / "ledger.sqlite"}"

[[feeds]]
venue = "binance"
url = "{sim_url}"
symbols = ["BTC/USDT", "ETH/USDT"]

[execution]
mode = "paper"

[subscriptions]
websocket_port = {ws_port}
[[subscriptions.tokens]]
name = "test"
sha256 = "{token_hash(token)}"

[metrics]
port = 0                  # none: parallel test runs would fight over the default port

[log]
format = "json"
""",
        encoding="utf-8",
    )
    return path


def holder_pid(ledger: Path) -> int | None:
    """The pid in the ledger's writer lock (read-only, as any reader would)."""
    if not ledger.exists():
        return None
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT pid FROM writer_lock WHERE pid != 0").fetchone()
    except sqlite3.OperationalError:  # not migrated yet
        return None
    finally:
        conn.close()
    return None if row is None else int(row[0])


def text_of(path: Path) -> str:
    return path.read_text(errors="replace")


def tail_of(path: Path) -> str:
    return text_of(path)[-2000:]


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor.cli", *args,
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_for_lock(
    ledger: Path, pid: int, proc: asyncio.subprocess.Process, err: Path
) -> None:
    async with asyncio.timeout(60):
        while holder_pid(ledger) != pid:
            assert proc.returncode is None, tail_of(err)
            await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_a_second_daemon_is_refused_readers_work_and_a_killed_holder_is_taken_over(
    tmp_path: Path,
) -> None:
    token = new_token()
    ws_port = free_port()
    ledger = tmp_path / "ledger.sqlite"
    async with BinanceSimulator(
        ["BTC/USDT", "ETH/USDT"], seed=5, tick_interval_ms=20, volatility_scale=0.01
    ) as sim:
        sim.set_price("BTC", 60_000.0)  # both BTC lots under water: alerts, paper sales
        cfg = str(config(tmp_path, sim.url, ws_port, token))
        err_path = tmp_path / "first.err"
        with (tmp_path / "first.out").open("wb") as out, err_path.open("wb") as err:
            first = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor.cli", "run", "--config", cfg, "--json",
                "--duration", "150", cwd=REPO, stdout=out, stderr=err,
            )  # fmt: skip
        try:
            await wait_for_lock(ledger, first.pid, first, err_path)

            code, out_text, err_text = await cli("run", "--config", cfg, "--duration", "30")
            assert code == 2, err_text
            lines = [line for line in err_text.splitlines() if line.strip()]
            assert len(lines) == 1, err_text  # one line, no traceback
            assert f"in use by `run` (pid {first.pid} on {socket.gethostname()} " in lines[0]
            assert "Traceback" not in err_text and out_text == ""

            # Readers work beside the daemon (none needs the writer lock).
            for args in (
                ["lots", "--config", cfg],
                ["tax", "summary", "--config", cfg],
                ["report", "harvests", "--config", cfg],
            ):
                code, _, err_text = await cli(*args)
                assert code == 0, f"{args}: {err_text}"
            code, tailed, err_text = await cli(
                "alerts", "tail", "--url", f"ws://127.0.0.1:{ws_port}/v1/alerts",
                "--since", "2000-01-01T00:00:00Z", "--count", "1", "--no-reconnect",
                env={"HM_ALERTS_TOKEN": token},
            )  # fmt: skip
            assert code == 0 and '"alert_id"' in tailed, err_text
            assert first.returncode is None  # the holder went on undisturbed

            first.kill()  # SIGKILL: the lock row stays, its pid is gone
            await first.wait()
            assert holder_pid(ledger) == first.pid

            code, _, err_text = await cli("run", "--config", cfg, "--duration", "3")
            assert code == 0, err_text
            assert "ledger writer lock taken over from a dead holder" in err_text
            assert f'"holder_pid": {first.pid}' in err_text
            assert holder_pid(ledger) is None  # released at its clean stop
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
    assert "UNIQUE constraint failed" not in text_of(err_path)
