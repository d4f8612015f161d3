"""A paper-replayed half year under the uk and ca packs: a coherent trade history,
booked by the pack's rules (uk Section 104 pool, ca adjusted cost base), with the
alerts, `tax summary` and `report harvests` agreeing, tax year by tax year.

Real parts: the replay reader, detection and its plans, the executor in event time with
the paper venue, the ledger (SQLite) and its tax books, and both CLI reports. The pool
is recomputed here by a second, simple implementation (average cost, fed with the
ledger's own lots and fills) to check the ledger's booking: the monitor's rebuys wait
out every window, so neither bed and breakfast nor a superficial loss comes into it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.alerts.jsonl import JsonLinesSink
from monitor.alerts.schema import decode_alert
from monitor.app import replay
from monitor.cli import main
from monitor.ledger import Ledger
from monitor.settings import Settings, load_settings
from streams.feeds.replay import read_ticks

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct,w1,BTC,1,60000,2025-01-01
L2,acct,w1,BTC,0.5,25000,2025-02-01
L3,acct,w2,BTC,0.5,20000,2025-03-01
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOURS = 150 * 24
CENT = Decimal("0.01")


def price_at(hour: int) -> float:
    """55,000 -> 40,000 (day 40) -> 46,000 (day 80) -> 30,000 (day 120) -> 35,000."""
    day = hour / 24
    legs = [(0, 55000), (40, 40000), (80, 46000), (120, 30000), (150, 35000)]
    for (d0, p0), (d1, p1) in itertools.pairwise(legs):
        if day <= d1:
            return round(p0 + (p1 - p0) * (day - d0) / (d1 - d0), 2)
    return 35000.0


def ticks(path: Path) -> Path:
    lines = []
    for h in range(HOURS):
        ts = int((T0 + timedelta(hours=h)).timestamp() * 1000)
        lines.append(json.dumps({"venue": "binance", "symbol": "BTC/USDT",
                                 "price": price_at(h), "ts": ts}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pack_settings(tmp_path: Path, pack: str) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={
            "ledger.path": str(tmp_path / "ledger.sqlite"),
            "feeds": [{"venue": "binance"}],  # the ticks are one venue's: min_venues 1
            "tax.jurisdiction": pack,
            "execution.mode": "paper",
            "execution.max_alert_age_s": 0,
            "execution.max_harvest_usd": 0,
            "execution.max_daily_usd": 0,
            "execution.kill_switch_file": str(tmp_path / "KILL"),
            "harvest.cooldown_s": 3600,
        },
    )


YEARS = {
    "uk": [
        (2025, "2025/26", "2025-04-06 to 2026-04-05"),
        (2026, "2026/27", "2026-04-06 to 2027-04-05"),
    ],
    "ca": [(2026, "2026", "2026-01-01 to 2026-12-31")],
}
REASON = {"uk": "s104", "ca": "average cost (ACB)"}


@pytest.mark.parametrize("pack", ["uk", "ca"])
async def test_a_paper_replayed_half_year_is_booked_by_the_pack(tmp_path: Path, pack: str) -> None:
    settings = pack_settings(tmp_path, pack)
    csv_path = tmp_path / "portfolio.csv"
    csv_path.write_text(PORTFOLIO, encoding="utf-8")
    ledger = Ledger.from_settings(settings).open()
    ledger.import_lots(csv_path)
    out = tmp_path / "alerts.jsonl"
    tick_file = ticks(tmp_path / "ticks.jsonl")
    await replay(settings, ledger.open_lots(), read_ticks(str(tick_file)),
                 [JsonLinesSink(str(out))], ledger=ledger)  # fmt: skip
    alerts = [decode_alert(line) for line in out.read_text(encoding="utf-8").splitlines()]
    harvests = {a.alert_id: a for a in alerts if a.kind == "harvest"}
    disposals = ledger.disposals()
    first, last = T0, T0 + timedelta(hours=HOURS - 1)
    assert len({d.alert_id for d in disposals}) >= 2  # harvested more than once

    # A coherent history in event time: every fill inside the replayed span, every sale of
    # units already bought, every rebuy outside every harvest's 30 days (no bed and
    # breakfast of the monitor's own making), every row booked from the s104 pool.
    with ledger.db.read() as conn:
        fills = conn.execute(
            "SELECT o.leg, f.at, f.quantity, f.notional_usd, f.fee_usd, f.intent_id "
            "FROM fills f JOIN orders o USING (client_order_id) ORDER BY f.at, f.id"
        ).fetchall()
        acquired = dict(conn.execute("SELECT lot_id, acquired_at FROM lots").fetchall())
    assert fills
    with ledger.db.read() as conn:
        planned = [r[0] for r in conn.execute("SELECT created_at FROM intents")]
    for at in [f[1] for f in fills] + planned:  # fills and intents in the stream's time
        assert first <= datetime.fromisoformat(at.replace("Z", "+00:00")) <= last
    sale_days = sorted({d.sold_on for d in disposals})
    rebuys = [f for f in fills if f[0] == "rebuy"]
    assert rebuys  # the rebuys came due inside the replay
    for _, at, *_ in rebuys:
        day = datetime.fromisoformat(at.replace("Z", "+00:00")).date()
        assert all(not (s <= day <= s + timedelta(days=30)) for s in sale_days), (day, sale_days)
    for d in disposals:
        assert datetime.fromisoformat(acquired[d.lot_id].replace("Z", "+00:00")).date() <= d.sold_on
        assert d.reason.startswith(REASON[pack]) and d.disallowed_loss_usd == 0, d.reason
        assert d.term == "short"  # no holding period in either pack

    # A second implementation of the pool: average cost over the ledger's own buys and
    # sells in time order.
    events: list[tuple[str, str, Decimal, Decimal, str]] = []
    for lot_id, at in acquired.items():
        lot = ledger.lot(lot_id)
        assert lot is not None
        events.append((at, "0buy", lot["quantity"], lot["cost_basis_usd"], lot_id))  # type: ignore[arg-type]
    for leg, at, qty, _, _, intent in fills:
        if leg == "sell":
            events.append((at, "1sell", Decimal(qty), Decimal(0), intent))
    pool_q = pool_c = Decimal(0)
    expected: dict[str, Decimal] = {}
    for _, kind, qty, cost, key in sorted(events):
        if kind == "0buy":
            pool_q, pool_c = pool_q + qty, pool_c + cost
        else:
            taken = pool_c * qty / pool_q
            expected[key] = taken
            pool_q, pool_c = pool_q - qty, pool_c - taken
    booked: dict[str, Decimal] = defaultdict(Decimal)
    with ledger.db.read() as conn:
        for intent_id, cost in conn.execute("SELECT intent_id, cost_basis_usd FROM disposals"):
            booked[intent_id] += Decimal(cost)
    assert set(booked) == set(expected)
    for key, cost in expected.items():
        assert abs(booked[key] - cost) < Decimal("1e-12"), key

    # The alerts' plans priced each sale as the ledger booked it (same pool cost).
    by_alert: dict[str, Decimal] = defaultdict(Decimal)
    for d in disposals:
        by_alert[d.alert_id] += d.cost_basis_usd
    for alert_id, cost in by_alert.items():
        assert harvests[alert_id].cost_basis_usd == str(cost.quantize(CENT, ROUND_HALF_UP))
    ledger.close()

    # tax summary and report harvests agree to the penny, tax year by tax year (the replay
    # runs past 5 April 2026: two uk tax years).
    env = {"HM_LEDGER__PATH": str(tmp_path / "ledger.sqlite"), "HM_TAX__JURISDICTION": pack}
    counted = 0
    for year, label, span in YEARS[pack]:
        args = ["report", "harvests", "--tax-year", str(year)]
        report = CliRunner().invoke(main, args, env=env)
        assert report.exit_code == 0, report.output
        assert f"tax year {label} ({span}), pack {pack}" in report.stderr
        rows = list(csv.DictReader(io.StringIO(report.stdout)))
        counted += len(rows)
        args = ["tax", "summary", "--tax-year", str(year), "--json"]
        summary = CliRunner().invoke(main, args, env=env)
        assert summary.exit_code == 0, summary.output
        figures = json.loads(summary.stdout)
        gains = [Decimal(r["gain_or_loss"]) for r in rows]
        assert Decimal(figures["short_term_losses_usd"]) == -sum(g for g in gains if g < 0)
        assert Decimal(figures["short_term_gains_usd"]) == sum(g for g in gains if g > 0)
        assert (figures["tax_year"], figures["disposals"]) == (label, len(rows))
    assert counted == len(disposals)
