"""The commands a user runs: a paper replay into a ledger, then its Form 8949 CSV."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from monitor.ledger import Ledger
from tests.integration.test_paper_replay import PORTFOLIO, drawdown

REPO = Path(__file__).parents[2]
ZERO, CENT = Decimal(0), Decimal("0.01")


def hm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_paper_replay_then_report_harvests(tmp_path: Path) -> None:
    (tmp_path / "portfolio.csv").write_text(PORTFOLIO, encoding="utf-8")
    ledger_path = tmp_path / "ledger.sqlite"
    config = tmp_path / "paper.toml"
    config.write_text(
        f'[ledger]\npath = "{ledger_path}"\n\n'
        '[execution]\nmode = "paper"\nmax_alert_age_s = 0\nmax_harvest_usd = 0\n'
        f'max_daily_usd = 0\nkill_switch_file = "{tmp_path / "KILL"}"\n'
        # The tick file is one venue's: a single-venue deployment (min_venues 1).
        '\n[[feeds]]\nvenue = "binance"\n',
        encoding="utf-8",
    )
    ticks = drawdown(tmp_path / "ticks.jsonl")
    replayed = hm(
        "replay", "--portfolio", str(tmp_path / "portfolio.csv"), "--ticks", str(ticks),
        "--config", str(config), "--ledger", str(ledger_path),
        "--alerts-out", str(tmp_path / "alerts.jsonl"),
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    report = hm("report", "harvests", "--year", "2026", "--config", str(config))
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    disposals = Ledger(ledger_path).open().disposals(2026)
    assert len(rows) == len(disposals) > 0
    # Each row from its disposal by the form's rules, worked out here: amounts to the cent
    # half up, (h) = (d) - (e) + (g), code W only with an adjustment, box I (short) or L
    # (long) without a Form 1099-DA.
    fields = ("lot_id", "date_sold", "part", "box", "proceeds", "cost_basis",
              "adjustment_code", "adjustment", "gain_or_loss")  # fmt: skip
    expected = []
    for d in disposals:
        p, b, g = (x.quantize(CENT, rounding=ROUND_HALF_UP) for x in
                   (d.proceeds_usd, d.cost_basis_usd, d.disallowed_loss_usd))  # fmt: skip
        expected.append((
            d.lot_id, d.sold_on.strftime("%m/%d/%Y"),
            "I" if d.term == "short" else "II", "I" if d.term == "short" else "L",
            f"{p:.2f}", f"{b:.2f}", "W" if g else "", f"{g:.2f}" if g else "",
            f"{p - b + g:.2f}",
        ))  # fmt: skip
    assert sorted(tuple(r[k] for k in fields) for r in rows) == sorted(expected)
    for box in ("I", "L"):
        mine = [r for r in rows if r["box"] == box]
        gain = sum(Decimal(r["gain_or_loss"]) for r in mine)
        assert f"box {box}: {len(mine)} rows," in report.stderr
        assert f"gain or loss {gain:.2f}" in report.stderr
    assert report.stdout.splitlines()[0].startswith("part,box,description,date_acquired")
    # The year-end view over the same ledger: its totals are the 8949 rows', to the cent.
    summary = hm("tax", "summary", "--year", "2026", "--json", "--config", str(config))
    assert summary.returncode == 0, summary.stderr
    figures = json.loads(summary.stdout)
    assert figures["disposals"] == len(disposals)
    # One rounding rule (Form 8949 adds the rounded rows): the summary's losses by term
    # are the sums of the report's own loss rows, to the cent.
    for term, part in (("short", "I"), ("long", "II")):
        gains = [Decimal(r["gain_or_loss"]) for r in rows if r["part"] == part]
        expected = -sum((g for g in gains if g < 0), ZERO)
        assert Decimal(figures[f"{term}_term_losses_usd"]) == expected
        assert Decimal(figures[f"{term}_term_gains_usd"]) == sum((g for g in gains if g > 0), ZERO)
    assert Decimal(figures["harvested_losses_usd"]) > 0
