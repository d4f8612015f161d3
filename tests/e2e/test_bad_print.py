"""Issue 10, item 1 through `harvest-monitor replay`: one venue's bad print is never
alerted, planned or traded.

The tick file: Binance, Coinbase and Kraken agree at 90,000; Binance and Coinbase go quiet
(past `[prices] max_age_s`); Kraken, alone, prints 0.0001, then 1e-300 (a record such as
one on hm.ticks), then a plausible 47,000 for one tick, each time back to 90,000. The lot
(1 BTC, basis 90,000) triggers under 85,500. Before the guard, each bad print alerted and,
in paper mode, sold the bitcoin for $0.00.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct-1,w-1,BTC,1,90000,2026-06-01
"""
T0 = 1_785_000_000_000  # 2026-07-25T17:20:00Z


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def bad_prints(path: Path) -> Path:
    """Ticks a second apart; three venues to 20 s, then Kraken alone to 120 s."""
    rows = []
    for s in range(0, 21):
        rows.append(("binance", "BTC/USDT", 90_000.0 + s, s))
        rows.append(("coinbase", "BTC/USD", 90_010.0, s))
    for s in range(0, 121):
        price = {61: 0.0001, 62: 1e-300, 90: 47_000.0}.get(s, 90_005.0)
        rows.append(("kraken", "BTC/USD", price, s))
    rows.sort(key=lambda r: r[3])
    lines = [
        json.dumps({"venue": v, "symbol": sym, "price": p, "ts": T0 + s * 1000})
        for v, sym, p, s in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_alerts_nothing_on_one_venue_bad_prints(tmp_path: Path) -> None:
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    out = tmp_path / "alerts.jsonl"
    ticks = bad_prints(tmp_path / "ticks.jsonl")
    done = cli("replay", "--portfolio", str(portfolio), "--ticks", str(ticks),
               "--alerts-out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == ""
    assert ": 0 alerts" in done.stderr


def test_paper_replay_sells_nothing_on_one_venue_bad_prints(tmp_path: Path) -> None:
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(PORTFOLIO, encoding="utf-8")
    ledger = tmp_path / "ledger.sqlite"
    config = tmp_path / "paper.toml"
    config.write_text(
        f"""
[ledger]
path = "{ledger}"

[execution]
mode = "paper"
max_alert_age_s = 0
kill_switch_file = "{tmp_path / "KILL"}"
""",
        encoding="utf-8",
    )
    out = tmp_path / "alerts.jsonl"
    ticks = bad_prints(tmp_path / "ticks.jsonl")
    done = cli("replay", "--portfolio", str(portfolio), "--ticks", str(ticks),
               "--config", str(config), "--ledger", str(ledger),
               "--alerts-out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == ""
    report = cli("report", "harvests", "--config", str(config), "--year", "2026",
                 "--format", "csv")  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert report.stdout.strip().count("\n") == 0  # the header only: nothing was sold
