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
        # One venue's fall to 10,000 is acted on once it has persisted [prices] hold_s.
        '{"venue":"binance","symbol":"BTC/USDT","price":10000,"ts":1785000120000}\n'
    )
    done = cli("replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks))
    assert done.returncode == 0, done.stderr
    assert f"{ticks}:2:" in done.stderr
    assert "replayed 3 ticks (1 rejected)" in done.stderr
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
            # A minute apart: one venue's prices are acted on once they persist hold_s.
            json.dumps(
                {"venue": "binance", "symbol": "BTC/USDT", "price": p, "ts": t0 + i * 60_000}
            )
            + "\n"
            for i, p in enumerate([99000, 98000, 90000, 80000])
        )
    )
    config = tmp_path / "paper.toml"
    config.write_text(  # one venue's ticks: a single-venue deployment (min_venues 1)
        f'[execution]\nmode = "paper"\nkill_switch_file = "{tmp_path / "KILL"}"\n'
        '\n[[feeds]]\nvenue = "binance"\n'
    )
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


def btc_fall(start_ms: int = 1_780_401_600_000, steps: int = 60) -> list[dict[str, object]]:
    """BTC from 90000 down 40% over 30 minutes, then flat: a tick a minute."""
    return [
        {
            "venue": "binance",
            "symbol": "BTC/USDT",
            "price": round(90000 * (1 - 0.4 * min(i, 30) / 30), 2),
            "ts": start_ms + i * 60_000,
        }
        for i in range(steps)
    ]


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("ts", "says"),
    [
        (1_780_401_900_000_000, "epoch microseconds?"),
        (1_780_401_900, "epoch seconds?"),
        (99_999_999_999_999_999, "outside 2009..2099"),
        (-5, "outside 2009..2099"),
    ],
)
def test_a_tick_time_that_cannot_be_right_is_skipped_with_its_line(
    tmp_path: Path, ts: int, says: str
) -> None:
    rows = btc_fall()
    rows[5]["ts"] = ts
    ticks = write_lines(tmp_path / "t.jsonl", rows)
    done = cli("replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert f"{ticks}:6: ts {ts!r} is not a tick time ({says}" in done.stderr
    assert "replayed 59 ticks (1 rejected)" in done.stderr


def test_a_future_dated_tick_does_not_blind_the_asset(tmp_path: Path) -> None:
    """One BTC line stamped a month ahead: skipped, and the replay alerts exactly as the
    file without it does (taken, it made every later BTC tick stale: no alerts)."""
    rows = btc_fall()
    clean = write_lines(tmp_path / "clean.jsonl", rows)
    rows.insert(3, {**rows[3], "ts": int(str(rows[3]["ts"])) + 30 * 86_400_000})
    dated = write_lines(tmp_path / "dated.jsonl", rows)
    out_clean, out_dated = tmp_path / "clean.out", tmp_path / "dated.out"
    a = cli(
        "replay", "--portfolio", str(EXAMPLE), "--ticks", str(clean), "--alerts-out", str(out_clean)
    )
    b = cli(
        "replay", "--portfolio", str(EXAMPLE), "--ticks", str(dated), "--alerts-out", str(out_dated)
    )
    assert a.returncode == 0 and b.returncode == 0, b.stderr[-2000:]
    assert f"{dated}:4: ts 2026-07-02T12:03:00.000Z is ahead of the lines after it" in b.stderr
    assert out_clean.read_bytes() and out_dated.read_bytes() == out_clean.read_bytes()


def test_the_shipped_example_replays_from_any_directory(tmp_path: Path) -> None:
    """README: `harvest-monitor replay --example`, run outside the repository."""
    done = cli("replay", "--example", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert alerts and {a["asset"] for a in alerts} <= {"BTC", "ETH", "SOL"}
    assert "replayed 360 ticks (0 rejected) over 360 lots" in done.stderr


def test_replay_without_ticks_says_what_to_give(tmp_path: Path) -> None:
    done = cli("replay", "--portfolio", str(EXAMPLE), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: replay needs --portfolio CSV and --ticks JSONL (or --example for the shipped ones)"
    )


def test_a_lot_is_not_sold_before_it_was_acquired(tmp_path: Path) -> None:
    """B1 is bought on 2025-06-01: a January crash sells B0 only; B1 can go once held."""
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(
        "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
        "B0,a,w,BTC,0.05,5000,2024-06-01\n"
        "B1,a,w,BTC,0.05,4500,2025-06-01\n"
    )
    january = 1_735_776_000_000  # 2025-01-02T00:00:00Z
    june = 1_748_822_400_000  # 2025-06-02T00:00:00Z
    # One venue's falls are acted on once they have persisted [prices] hold_s (a minute).
    prices = [
        (january, 99000), (january + 60_000, 80000), (january + 120_000, 80000),
        (june, 99000), (june + 60_000, 70000), (june + 120_000, 70000),
    ]  # fmt: skip
    ticks = tmp_path / "t.jsonl"
    ticks.write_text(
        "".join(
            json.dumps({"venue": "binance", "symbol": "BTC/USDT", "price": p, "ts": t}) + "\n"
            for t, p in prices
        )
    )
    config = tmp_path / "paper.toml"
    config.write_text(  # one venue's ticks: a single-venue deployment (min_venues 1)
        f'[execution]\nmode = "paper"\nkill_switch_file = "{tmp_path / "KILL"}"\n'
        '\n[[feeds]]\nvenue = "binance"\n'
    )
    ledger = tmp_path / "ledger.sqlite"
    done = cli(
        "replay", "--portfolio", str(portfolio), "--ticks", str(ticks),
        "--config", str(config), "--ledger", str(ledger), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    january_lots = {
        lot for a in alerts if a["tick_ts"].startswith("2025-01") for lot in a["lot_ids"]
    }
    assert "B1" not in january_lots and "B0" in january_lots
    from monitor.ledger import Ledger

    book = Ledger(ledger).open()
    try:
        sold = {d.lot_id: d.sold_on for d in book.disposals()}
    finally:
        book.close()
    assert sold["B0"] == date(2025, 1, 2)
    assert sold["B1"] == date(2025, 6, 2)  # sold once held, never before 2025-06-01
