"""Paper execution through the real ledger: intents, fills, lot events, disposals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.alerts.schema import Alert, alert_id, encode_alert
from monitor.execute.executor import Executor
from monitor.execute.fills import BookChange
from monitor.execute.guardrails import Guardrails
from monitor.execute.paper import PaperVenue
from monitor.execute.venue import Reference, Side, VenueOrder
from monitor.ledger import Ledger
from monitor.ledger.lots import close_for_sale
from monitor.settings import Settings, load_settings

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
LOTS = "L1,acct,w1,BTC,1,60000,2025-03-01\nL2,acct,w1,BTC,0.5,35000,2024-01-10\n"


def at_40000(asset: str) -> Decimal | None:
    """The paper venue's market view: every asset at the alerts' price."""
    return Decimal(40000)


def settings(tmp_path: Path, **overrides: object) -> Settings:
    base = {
        "execution.mode": "paper",
        "execution.max_alert_age_s": 0,
        "execution.kill_switch_file": str(tmp_path / "KILL"),
        "execution.poll_interval_s": 0.01,
        "execution.max_harvest_usd": 0,
        "execution.max_daily_usd": 0,
    }
    base.update(overrides)
    return load_settings(None, env={}, overrides=base)


def alert(lot_ids: list[str], quantity: str, price: str = "40000", n: int = 0) -> Alert:
    tick_ts = f"2026-03-01T12:00:0{n}.000Z"
    return Alert(
        alert_id=alert_id("harvest", "acct", "w1", "BTC", ",".join(lot_ids), price, tick_ts),
        account="acct",
        wallet="w1",
        asset="BTC",
        lot_ids=lot_ids,
        quantity=quantity,
        price=price,
        cost_basis_usd="95000.00",
        proceeds_usd="60000.00",
        loss_usd="35000.00",
        short_term_loss_usd="20000.00",
        long_term_loss_usd="15000.00",
        tax_savings_usd="10400.00",
        cost_usd="180.00",
        net_benefit_usd="10220.00",
        venue="binance",
        symbol="BTC/USDT",
        tick_ts=tick_ts,
        emitted_at=tick_ts,
        venues=3,
        confirmed_by="venues",
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + LOTS, encoding="utf-8")
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    ledger.import_lots(csv)
    return ledger


async def run_one(ex: Executor, ledger: Ledger, a: Alert) -> None:
    ledger.alerts.record_alerts([(a.alert_id, a.emitted_at, encode_alert(a))])
    await ex.drain()


async def test_a_paper_harvest_sells_rebuys_and_records_everything(
    tmp_path: Path, ledger: Ledger
) -> None:
    changes: list[BookChange] = []
    venue = PaperVenue(settings(tmp_path).harvest, price_of=at_40000)
    ex = Executor(
        settings(tmp_path),
        ledger,
        venue,
        listeners=[changes.append],
        guardrails=Guardrails(settings(tmp_path).execution, env={}),
    )
    await ex.recover()
    a = alert(["L1", "L2"], "1.5")
    await run_one(ex, ledger, a)

    intent = ledger.intents.in_states(("done",))
    assert [i.alert_id for i in intent] == [a.alert_id]
    # Sell 1.5 at 40000 less 5 bps = 39980: 59970 notional, 59.97 fee -> 59910.03 net.
    disposals = ledger.disposals(2026)
    assert [(d.lot_id, d.quantity, d.term) for d in disposals] == [
        ("L1", Decimal(1), "short"),  # bought 2025-03-01: long-term only from 2026-03-02
        ("L2", Decimal("0.5"), "long"),
    ]
    assert [d.proceeds_usd for d in disposals] == [Decimal("39940.02"), Decimal("19970.01")]
    assert sum(d.proceeds_usd for d in disposals) == Decimal("59910.03")
    assert [d.cost_basis_usd for d in disposals] == [Decimal(60000), Decimal(35000)]
    assert all(d.sold_on == date(2026, 3, 1) and d.alert_id == a.alert_id for d in disposals)
    assert ledger.lot_events("L1") == [("opened", "1", "60000"), ("closed", "1", "60000")]
    # Rebuy 1.5 at 40020: 60030 + 60.03 fee is the new lot's basis, acquired at the tick.
    rebuy = ledger.open_lots()
    assert rebuy.height == 1
    row = rebuy.row(0, named=True)
    assert (row["asset"], row["quantity"], row["cost_basis_usd"]) == (
        "BTC",
        Decimal("1.5"),
        Decimal("60090.03"),
    )
    assert row["acquired_at"].isoformat() == "2026-03-01T12:00:00+00:00"
    assert [(c.disposals != (), c.opened_lot_id != "") for c in changes] == [
        (True, False),
        (False, True),
    ]
    assert len(venue.orders) == 2


async def test_the_same_alert_twice_is_one_harvest(tmp_path: Path, ledger: Ledger) -> None:
    venue = PaperVenue(settings(tmp_path).harvest, price_of=at_40000)
    ex = Executor(settings(tmp_path), ledger, venue)
    await ex.recover()
    a = alert(["L1"], "1")
    await run_one(ex, ledger, a)
    await ex.handle(a)  # e.g. the alert replayed after a restart
    ledger.alerts.record_alerts([(a.alert_id, a.emitted_at, encode_alert(a))])
    await ex.drain()
    assert len(venue.orders) == 2  # one sell, one rebuy
    assert len(ledger.disposals()) == 1


async def test_a_lot_already_sold_is_not_sold_again(tmp_path: Path, ledger: Ledger) -> None:
    venue = PaperVenue(settings(tmp_path).harvest, price_of=at_40000)
    ex = Executor(settings(tmp_path, **{"harvest.rebuy": "none"}), ledger, venue)
    await ex.recover()
    await run_one(ex, ledger, alert(["L1"], "1"))
    second = alert(["L1", "L2"], "1.5", price="39000", n=5)
    await run_one(ex, ledger, second)
    cancelled = ledger.intents.in_states(("cancelled",))
    assert [(i.alert_id, i.reason) for i in cancelled] == [(second.alert_id, "lot L1 is closed")]
    assert [d.lot_id for d in ledger.disposals()] == ["L1"]
    assert ledger.lot("L2") is not None and ledger.lot("L2")["reserved_by"] is None


async def test_kill_switch_file_stops_the_sell(tmp_path: Path, ledger: Ledger) -> None:
    (tmp_path / "KILL").write_text("", encoding="utf-8")
    venue = PaperVenue(settings(tmp_path).harvest, price_of=at_40000)
    ex = Executor(settings(tmp_path), ledger, venue)
    await ex.recover()
    await run_one(ex, ledger, alert(["L1"], "1"))
    [intent] = ledger.intents.in_states(("cancelled",))
    assert intent.reason.startswith("kill switch:")
    assert venue.orders == {}
    assert ledger.open_lots().height == 2


async def test_guardrails_cap_a_harvest_and_a_day(tmp_path: Path, ledger: Ledger) -> None:
    s = settings(
        tmp_path,
        **{
            "execution.max_harvest_usd": 50000,
            "execution.max_daily_usd": 50000,
            "harvest.rebuy": "none",
        },
    )
    venue = PaperVenue(s.harvest, price_of=at_40000)
    ex = Executor(s, ledger, venue)
    await ex.recover()
    await run_one(ex, ledger, alert(["L1", "L2"], "1.5"))  # 60000 USD > 50000
    await run_one(ex, ledger, alert(["L1"], "1", n=1))  # 40000: fits
    await run_one(ex, ledger, alert(["L2"], "0.5", n=2))  # 20000 more: over the day
    reasons = [i.reason for i in ledger.intents.in_states(("cancelled",))]
    assert len(reasons) == 2
    assert "over max_harvest_usd" in reasons[0] and "over max_daily_usd" in reasons[1]
    assert [d.lot_id for d in ledger.disposals()] == ["L1"]


class HalfFillVenue(PaperVenue):
    """Fills half of each sell (the rest expires), like a thin market."""

    async def create_market_order(
        self, symbol: str, side: Side, amount: Decimal, client_order_id: str, ref: Reference
    ) -> VenueOrder:
        order = await super().create_market_order(symbol, side, amount, client_order_id, ref)
        if side == "buy":
            return order
        half = replace(
            order,
            status="expired",
            filled=amount / 2,
            cost=order.cost / 2,
            fee_quote=order.fee_quote / 2,
        )
        self.orders[client_order_id] = half
        return half


async def test_a_partial_sell_closes_lots_in_plan_order_pro_rata(
    tmp_path: Path, ledger: Ledger
) -> None:
    s = settings(tmp_path)
    ex = Executor(s, ledger, HalfFillVenue(s.harvest, price_of=at_40000))
    await ex.recover()
    a = alert(["L1", "L2"], "1.5")
    await run_one(ex, ledger, a)
    [intent] = ledger.intents.in_states(("done",))
    # 0.75 of 1.5 filled: all of it from L1 (first in the plan), L2 untouched.
    [d] = ledger.disposals()
    assert (d.lot_id, d.quantity) == ("L1", Decimal("0.75"))
    assert d.cost_basis_usd == Decimal(45000)  # 0.75 of L1's 60000
    lot = ledger.lot("L1")
    assert lot is not None
    assert (lot["status"], lot["open_quantity"], lot["open_cost_basis_usd"]) == (
        "open",
        Decimal("0.25"),
        Decimal(15000),
    )
    assert ledger.lot_events("L1")[-1] == ("partially_closed", "0.75", "45000")
    rebuy = ledger.lot(f"{intent.intent_id}-rebuy")
    assert rebuy is not None and rebuy["quantity"] == Decimal("0.75")  # what was sold
    assert lot["reserved_by"] is None and ledger.lot("L2")["reserved_by"] is None  # type: ignore[index]
    assert sorted(ledger.open_lots()["lot_id"].to_list()) == sorted(
        ["L1", "L2", f"{intent.intent_id}-rebuy"]
    )


def test_a_pro_rata_basis_keeps_the_parts_exact(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + "L1,a,w,BTC,3,100,2025-03-01\n", encoding="utf-8")
    ledger = Ledger(tmp_path / "l.sqlite").open()
    ledger.import_lots(csv)
    sold = []
    for n in range(3):  # a third at a time: 100/3 does not terminate
        with ledger.db.transaction() as conn:
            sold += close_for_sale(
                conn,
                intent_id=f"i{n}",
                alert_id=f"a{n}",
                plan=[("L1", Decimal(1))],
                filled=Decimal(1),
                net_proceeds=Decimal(20),
                sold_at=datetime(2026, 3, 1, tzinfo=UTC),
            )
    assert sum(d.cost_basis_usd for d in sold) == Decimal(100)  # exactly the lot's basis
    assert sold[0].cost_basis_usd == Decimal("33.333333333333333333")
    assert ledger.lot("L1")["status"] == "closed"  # type: ignore[index]


@pytest.mark.parametrize(
    ("short", "long", "saved", "exempt", "traded"),
    [
        ("20000.00", "15000.00", "10400.00", False, True),
        ("10000.00", "-20000.00", "300.00", False, False),  # nets to a 10,000 gain
        ("-500.00", "0.00", "-185.00", False, False),  # a negative loss
        ("10000.00", "-20000.00", "3700.00", True, True),  # de: the long gain is tax-free
        ("100.00", "0.00", "0.00", False, False),  # worth nothing
    ],
)
def test_a_sale_netting_to_a_gain_is_never_executed_as_a_harvest(
    tmp_path: Path, short: str, long: str, saved: str, exempt: bool, traded: bool
) -> None:
    from msgspec.structs import replace as with_fields

    from monitor.execute.intake import screen

    a = with_fields(
        alert(["L1"], "1"), short_term_loss_usd=short, long_term_loss_usd=long,
        tax_savings_usd=saved,
    )  # fmt: skip
    assert (screen(a, settings(tmp_path), long_term_exempt=exempt) is None) == traded


async def test_a_rebuy_waits_for_every_open_window_of_the_asset(tmp_path: Path) -> None:
    """ca (30-day superficial-loss window): a harvest on 1 March rebuys from 1 April
    (rebuy_delay_days 31); a second harvest of BTC on 20 March: buying on 2 April would
    fall inside the second sale's 30 days, so the rebuy waits until 20 April (+31)."""
    from monitor.tax.rules import tax_rules

    config = settings(tmp_path, **{"tax.jurisdiction": "ca", "harvest.rebuy_delay_days": 31})
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + LOTS, encoding="utf-8")
    book = Ledger(tmp_path / "ca.sqlite", tax=tax_rules(config.tax)).open()
    book.import_lots(csv)
    now = {"t": datetime(2026, 3, 1, 12, tzinfo=UTC)}
    ex = Executor(config, book, PaperVenue(config.harvest, price_of=at_40000),
                  clock=lambda: now["t"],
                  price_of=lambda asset: Decimal(30000))  # fmt: skip
    await ex.recover()
    await run_one(ex, book, alert(["L1"], "1"))
    (intent,) = book.intents.in_states(("sell_filled",))
    with book.db.transaction() as conn:
        close_for_sale(conn, intent_id="later", alert_id="a-later", plan=[("L2", Decimal("0.1"))],
                       filled=Decimal("0.1"), net_proceeds=Decimal(3000),
                       sold_at=datetime(2026, 3, 20, 12, tzinfo=UTC), rules=book.tax)  # fmt: skip
    now["t"] = datetime(2026, 4, 2, tzinfo=UTC)  # past its own window, not the later one's
    await ex.drain()
    assert book.intents.get(intent.intent_id).state == "sell_filled"  # type: ignore[union-attr]
    now["t"] = datetime(2026, 4, 20, tzinfo=UTC)
    await ex.drain()
    assert book.intents.get(intent.intent_id).state == "done"  # type: ignore[union-attr]
    rebuy = book.lot(f"{intent.intent_id}-rebuy")
    assert rebuy is not None and rebuy["acquired_at"].startswith("2026-04-20")
