"""`harvest-monitor replay` end to end: deterministic output, bad lines reported, exact amounts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from monitor.examples import PORTFOLIO, example_path

REPO = Path(__file__).parents[2]
EXAMPLE = example_path(PORTFOLIO)


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_drawdown(path: Path, assets: dict[str, float], steps: int = 120) -> None:
    """Every asset falls 45% over the first half, then recovers: a tick a minute."""
    lines = []
    start_ms = 1_785_000_000_000  # 2026-07-25
    for i in range(steps):
        depth = 0.45 * (i / (steps / 2) if i < steps / 2 else (steps - i) / (steps / 2))
        for base, price in assets.items():
            p = round(price * (1 - depth), 6)
            lines.append(
                json.dumps(
                    {
                        "venue": "binance",
                        "symbol": f"{base}/USDT",
                        "price": p,
                        "ts": start_ms + i * 60_000,
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def ticks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streams.simulator.universe import UNIVERSE

    path = tmp_path_factory.mktemp("replay") / "ticks.jsonl"
    write_drawdown(path, {a.base: a.start_usd for a in UNIVERSE})
    return path


def test_replay_twice_gives_byte_identical_alerts(ticks: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        done = cli(
            "replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks), "--alerts-out", str(out)
        )
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) > 20


def test_replay_alerts_follow_the_schema_and_add_up(ticks: Path) -> None:
    done = cli("replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks))
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    from decimal import Decimal

    for a in alerts:
        assert a["schema"] == "hm.alert/1"
        loss = Decimal(a["cost_basis_usd"]) - Decimal(a["proceeds_usd"])
        assert abs(loss - Decimal(a["loss_usd"])) <= Decimal("0.01")
        split = Decimal(a["short_term_loss_usd"]) + Decimal(a["long_term_loss_usd"])
        assert abs(split - Decimal(a["loss_usd"])) <= Decimal("0.01")
        assert Decimal(a["net_benefit_usd"]) >= Decimal("25")
        assert a["emitted_at"] == a["tick_ts"]  # event time, no wall clock


def test_replay_reports_bad_lines_with_numbers_and_goes_on(tmp_path: Path) -> None:
    ticks = tmp_path / "t.jsonl"
    ticks.write_text(
        '{"venue":"binance","symbol":"BTC/USDT","price":90000,"ts":1785000000000}\n'
        "{not json\n"
        '{"venue":"binance","symbol":"BTC/USDT","price":10000,"ts":1785000060000}\n'
    )
    done = cli("replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks))
    assert done.returncode == 0, done.stderr
    assert f"{ticks}:2:" in done.stderr
    assert "replayed 2 ticks (1 rejected)" in done.stderr
    assert any(json.loads(line)["asset"] == "BTC" for line in done.stdout.splitlines())


def test_replay_with_bad_portfolio_exits_with_the_row_error(tmp_path: Path, ticks: Path) -> None:
    bad = tmp_path / "p.csv"
    bad.write_text(
        "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\nL1,a,w,BTC,one,1,2025-01-01\n"
    )
    done = cli("replay", "--portfolio", str(bad), "--ticks", str(ticks))
    assert done.returncode == 2
    assert f"{bad}:2: quantity: 'one' is not a decimal number" in done.stderr


def test_paper_replay_judges_alert_age_in_event_time(tmp_path: Path) -> None:
    """Default [execution] guardrails (max_alert_age_s 120): a 2025 replay is traded.

    Against the wall clock every replayed alert was months old and nothing was sold.
    """
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(
        "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
        "B0,a,w,BTC,0.05,5000,2024-06-01\n"
    )
    ticks = tmp_path / "t.jsonl"
    t0 = 1_735_776_000_000  # 2025-01-02T00:00:00Z
    ticks.write_text(
        "".join(
            json.dumps({"venue": "binance", "symbol": "BTC/USDT", "price": p, "ts": t0 + i}) + "\n"
            for i, p in enumerate([99000, 98000, 90000, 80000])
        )
    )
    config = tmp_path / "paper.toml"
    config.write_text(f'[execution]\nmode = "paper"\nkill_switch_file = "{tmp_path / "KILL"}"\n')
    ledger = tmp_path / "ledger.sqlite"
    done = cli(
        "replay", "--portfolio", str(portfolio), "--ticks", str(ticks),
        "--config", str(config), "--ledger", str(ledger),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "old (max_alert_age_s" not in done.stderr
    from monitor.ledger import Ledger

    book = Ledger(ledger).open()
    try:
        # 0.05 BTC bought for 5000 (100000 a unit), sold on the first alert's tick.
        sold = [(d.lot_id, d.cost_basis_usd, d.sold_on) for d in book.disposals()]
        assert sold[0] == ("B0", 5000, date(2025, 1, 2))
    finally:
        book.close()
