"""Paper execution over a replayed drawdown: the ledger agrees with the alerts, and the
Form 8949 export adds up to the cent.

Real parts: the replay reader, detection with its plans, the ledger on a SQLite file,
the paper venue, the lot book rebuilt after each fill, and the `report harvests` CLI.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from monitor.alerts.jsonl import JsonLinesSink
from monitor.alerts.schema import Alert, cents, decode_alert
from monitor.app import replay
from monitor.cli import main
from monitor.ledger import Ledger
from monitor.portfolio import load_portfolio
from monitor.settings import Settings, load_settings
from streams.feeds.replay import read_ticks

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
B1,acct-1,w1,BTC,0.5,31000,2025-06-01
B2,acct-1,w1,BTC,0.25,16250.50,2025-09-15
B3,acct-2,w2,BTC,1.2,70000,2024-11-20
E1,acct-1,w1,ETH,4,16000,2025-05-10
E2,acct-2,w2,ETH,10.5,36750.75,2025-12-01
"""
SLIPPAGE = Decimal("0.0005")  # [harvest] slippage_bps = 5
FEE = Decimal("0.001")  # [harvest] fee_rate


def drawdown(path: Path) -> Path:
    """BTC 62000 -> 31000 -> 50000 and ETH 4000 -> 1800 -> 3000, one tick a minute each."""
    lines = []
    t0 = 1_772_366_400_000  # 2026-03-01T12:00:00Z
    for i in range(360):
        leg = i / 180 if i < 180 else (i - 180) / 180
        btc = 62000 - 31000 * leg if i < 180 else 31000 + 19000 * leg
        eth = 4000 - 2200 * leg if i < 180 else 1800 + 1200 * leg
        ts = t0 + i * 60_000
        for symbol, price in (("BTC/USDT", btc), ("ETH/USDT", eth)):
            lines.append(json.dumps({"venue": "binance", "symbol": symbol,
                                     "price": round(price, 2), "ts": ts}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def paper_settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        env={},
        overrides={
            "ledger.path": str(tmp_path / "ledger.sqlite"),
            "feeds": [{"venue": "binance"}],  # the ticks are one venue's: min_venues 1
            "execution.mode": "paper",
            "execution.max_alert_age_s": 0,  # event time: the alerts are "old"
            "execution.max_harvest_usd": 0,
            "execution.max_daily_usd": 0,
            "execution.kill_switch_file": str(tmp_path / "KILL"),
            "harvest.cooldown_s": 600,
        },
    )


async def run_paper_replay(tmp_path: Path) -> tuple[Ledger, list[Alert]]:
    settings = paper_settings(tmp_path)
    csv_path = tmp_path / "portfolio.csv"
    csv_path.write_text(PORTFOLIO, encoding="utf-8")
    ledger = Ledger(settings.ledger.path).open()
    ledger.import_lots(csv_path)
    out = tmp_path / "alerts.jsonl"
    await replay(
        settings,
        ledger.open_lots(),
        read_ticks(str(drawdown(tmp_path / "ticks.jsonl"))),
        [JsonLinesSink(str(out))],
        ledger=ledger,
    )
    alerts = [decode_alert(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert load_portfolio(csv_path).height == 5
    return ledger, [a for a in alerts if a.kind == "harvest"]


async def test_paper_ledger_matches_the_alerts(tmp_path: Path) -> None:
    ledger, alerts = await run_paper_replay(tmp_path)
    intents = {i.alert_id: i for i in ledger.intents.in_states(("done",))}
    assert len(alerts) >= 4  # both assets, both accounts, and rebuy lots harvested again
    assert set(intents) == {a.alert_id for a in alerts}  # every harvest alert executed
    assert ledger.intents.in_states(("cancelled", "failed")) == []
    by_alert = defaultdict(list)
    for d in ledger.disposals(2026):
        by_alert[d.alert_id].append(d)
    sells = {i: (q, p, f) for i, leg, q, p, f in ledger.intents.fills() if leg == "sell"}
    for alert in alerts:
        intent = intents[alert.alert_id]
        sold = by_alert[alert.alert_id]
        assert [d.lot_id for d in sold] == alert.lot_ids
        quantity = sum(d.quantity for d in sold)
        assert quantity == Decimal(alert.quantity)
        basis = sum(d.cost_basis_usd for d in sold)
        assert cents(basis) == alert.cost_basis_usd
        price = Decimal(alert.price)
        assert cents(quantity * price) == alert.proceeds_usd
        assert cents(basis - quantity * price) == alert.loss_usd
        # The paper sale: the alert's price less slippage, the fee on what it fetched.
        q, fill_price, fee = sells[intent.intent_id]
        assert (q, fill_price) == (quantity, price * (1 - SLIPPAGE))
        assert fee == FEE * quantity * fill_price
        assert sum(d.proceeds_usd for d in sold) == quantity * fill_price - fee
        realized = basis - sum(d.proceeds_usd for d in sold)
        assert realized == basis - quantity * price + quantity * price * SLIPPAGE + fee
    total_alerted = sum(Decimal(a.cost_basis_usd) for a in alerts)
    total_ledger = sum(
        Decimal(cents(sum(d.cost_basis_usd for d in by_alert[a.alert_id]))) for a in alerts
    )
    assert total_alerted == total_ledger


async def test_rebuys_are_lots_of_the_book(tmp_path: Path) -> None:
    ledger, _ = await run_paper_replay(tmp_path)
    rebuys = {i: (q, p, f) for i, leg, q, p, f in ledger.intents.fills() if leg == "rebuy"}
    open_lots = {r["lot_id"]: r for r in ledger.open_lots().iter_rows(named=True)}
    sold_rebuy_lots = {d.lot_id for d in ledger.disposals() if d.lot_id.endswith("-rebuy")}
    assert sold_rebuy_lots  # a rebuy lot crossed its own (lower) trigger later on
    for intent_id, (q, price, fee) in rebuys.items():
        lot_id = f"{intent_id}-rebuy"
        lot = ledger.lot(lot_id)
        assert lot is not None and lot["cost_basis_usd"] == q * price + fee
        assert (lot_id in open_lots) != (lot_id in sold_rebuy_lots)
    for lot_id in ("B1", "B2", "B3", "E1", "E2"):
        events = [kind for kind, _, _ in ledger.lot_events(lot_id)]
        assert events[0] == "opened" and events[-1] == "closed" and lot_id not in open_lots


async def test_the_8949_export_adds_up_to_the_cent(tmp_path: Path) -> None:
    ledger, _ = await run_paper_replay(tmp_path)
    disposals = ledger.disposals(2026)
    ledger.close()
    result = CliRunner().invoke(
        main,
        ["report", "harvests", "--year", "2026", "--format", "csv"],
        env={"HM_LEDGER__PATH": str(tmp_path / "ledger.sqlite")},
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(disposals)
    exact = {(d.lot_id, d.alert_id): d for d in disposals}
    for row in rows:
        d = exact[(row["lot_id"], row["alert_id"])]
        assert Decimal(row["proceeds"]) == Decimal(cents(d.proceeds_usd))
        assert Decimal(row["cost_basis"]) == Decimal(cents(d.cost_basis_usd))
        gain = Decimal(row["proceeds"]) - Decimal(row["cost_basis"])
        assert Decimal(row["gain_or_loss"]) == gain < 0  # harvests realize losses
        assert row["box"] == ("I" if d.term == "short" else "L")
        assert row["date_sold"] == d.sold_on.strftime("%m/%d/%Y")
    for box in {r["box"] for r in rows}:
        mine = [r for r in rows if r["box"] == box]
        totals = {
            k: sum(Decimal(r[k]) for r in mine) for k in ("proceeds", "cost_basis", "gain_or_loss")
        }
        line = (
            f"box {box}: {len(mine)} rows, proceeds {totals['proceeds']:.2f}, "
            f"cost basis {totals['cost_basis']:.2f}"
        )
        assert line in result.stderr
        assert totals["proceeds"] - totals["cost_basis"] == totals["gain_or_loss"]
    # The rows' losses are the ledger's, each rounded once.
    assert sum(Decimal(r["gain_or_loss"]) for r in rows) == sum(
        Decimal(cents(d.proceeds_usd)) - Decimal(cents(d.cost_basis_usd)) for d in disposals
    )
