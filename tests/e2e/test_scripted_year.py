"""A scripted year through `harvest-monitor replay` and `harvest-monitor tax summary`.

A portfolio of five lots and a year of daily prices through a drawdown and recovery:
BTC 62,000 - 300 a day to 36,200 (day 86), then + 150 a day; ETH 4,210 - 20 a day to
2,810 (day 70), then + 25 a day. Settings: min loss $100, no percentage rule, min net
benefit $1,000, cost 0.003, rates 0.37 / 0.20, a cooldown of a year (each lot alerts
once), deadline alerts 14 days ahead. Triggers (net rule, (r*q*B - m) / (q*(r + c))):

    B1 BTC 1 @ 60,000 short:     (22,200 - 1,000) / 0.373      = 56,836.46 -> day 18, 56,600
    E1 ETH 10 @ 40,000 short:    (14,800 - 1,000) / 3.73       =  3,699.73 -> day 26, 3,690
    B3 BTC 1 @ 45,000 (bought 2025-02-20) long-term from 2026-02-21 (day 51):
                                 ( 9,000 - 1,000) / 0.203      = 39,408.87 -> day 76, 39,200
       (short-term it would have been 41,957.10: the index was rebuilt on day 51)
    B2 BTC 0.5 @ 24,000 long:    ( 4,800 - 1,000) / 0.1015     = 37,438.42 -> day 82, 37,400
    E2 ETH 2 @ 8,000 turns long-term 2026-03-02: never reaches its trigger (2,627.35), but
       on 2026-02-16 (day 46, 14 days before) it is 1,420 down at 3,290: a deadline alert.

Realized if each harvest alert is executed: B1 3,400 + E1 3,100 = 6,500 short-term,
B3 5,800 + B2 5,300 = 11,100 long-term. Netted (us): 3,000 offsets ordinary income
(1,110 saved at 0.37), the rest carries: 3,500 short, 11,100 long, worth today
0.5 * (3,500 * 0.37 + 11,100 * 0.20) = 1,757.50. Estimated tax saved 2,867.50.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).parents[2]
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
B1,alice,cb,BTC,1,60000,2025-09-15
B2,alice,cb,BTC,0.5,24000,2024-01-10
B3,alice,cb,BTC,1,45000,2025-02-20
E1,alice,cb,ETH,10,40000,2026-01-05
E2,alice,cb,ETH,2,8000,2025-03-01
"""
CONFIG = """
[tax]
short_term_rate = 0.37
long_term_rate = 0.20
[harvest]
min_loss_usd = 100.0
min_loss_pct = 0.0
min_net_benefit_usd = 1000.0
cooldown_s = 31536000
deadline_days = 14
[prices]
usd_quotes = ["USD"]
"""


def btc(n: int) -> int:
    return 62_000 - 300 * n if n <= 86 else 36_200 + 150 * (n - 86)


def eth(n: int) -> int:
    return 4_210 - 20 * n if n <= 70 else 2_810 + 25 * (n - 70)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_scripted_year_realizes_the_hand_computed_losses(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(PORTFOLIO)
    (tmp_path / "m.toml").write_text(CONFIG)
    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ticks = []
    for n in range(365):
        ts = int((noon + timedelta(days=n)).timestamp() * 1000)
        for symbol, price in (("BTC/USD", btc(n)), ("ETH/USD", eth(n))):
            ticks.append(
                json.dumps({"venue": "kraken", "symbol": symbol, "price": price, "ts": ts})
            )
    (tmp_path / "t.jsonl").write_text("\n".join(ticks) + "\n")
    done = cli(
        "replay", "--portfolio", str(tmp_path / "p.csv"), "--ticks", str(tmp_path / "t.jsonl"),
        "--config", str(tmp_path / "m.toml"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    seen = [(a["kind"], a["tick_ts"][:10], a["lot_ids"], a["price"], a["loss_usd"]) for a in alerts]
    assert seen == [
        ("harvest", "2026-01-19", ["B1"], "56600", "3400.00"),
        ("harvest", "2026-01-27", ["E1"], "3690", "3100.00"),
        ("deadline", "2026-02-16", ["E2"], "3290", "1420.00"),
        ("harvest", "2026-03-18", ["B3"], "39200", "5800.00"),
        ("harvest", "2026-03-24", ["B2"], "37400", "5300.00"),
    ]
    assert [a["long_term_loss_usd"] for a in alerts if a["kind"] == "harvest"] == [
        "0.00",
        "0.00",
        "5800.00",
        "5300.00",
    ]
    assert alerts[2]["plan"]["deadline"] == "2026-03-02"

    # Execute every harvest alert: each becomes a disposal in the year's summary.
    lines = [
        "lot_id,account,wallet,asset,quantity,acquired_on,sold_on,proceeds_usd,"
        "cost_basis_usd,term,harvest,alert_id"
    ]
    for a in alerts:
        if a["kind"] != "harvest":
            continue
        for lot in a["plan"]["lots"]:
            lines.append(
                f"{lot['lot_id']},{a['account']},{a['wallet']},{a['asset']},{lot['quantity']},"
                f"{lot['acquired_on']},{a['tick_ts'][:10]},{lot['proceeds_usd']},"
                f"{lot['cost_basis_usd']},{lot['term']},true,{a['alert_id']}"
            )
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    done = cli(
        "tax", "summary", "--year", "2026", "--json", "--disposals", str(tmp_path / "d.csv"),
        "--config", str(tmp_path / "m.toml"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["short_term_losses_usd"], summary["long_term_losses_usd"]) == (
        "6500.00",
        "11100.00",
    )
    assert summary["harvested_losses_usd"] == "17600.00"
    assert (summary["ordinary_income_offset_usd"], summary["tax_saved_usd"]) == (
        "3000.00",
        "1110.00",
    )
    assert (summary["carryforward_short_usd"], summary["carryforward_long_usd"]) == (
        "3500.00",
        "11100.00",
    )
    assert Decimal(summary["estimated_tax_saved_usd"]) == Decimal("2867.50")
    assert date.fromisoformat(summary["to"]) == date(2026, 12, 31)
