"""The ledger books sales by the pack (monitor/ledger/books.py), and a later acquisition
re-costs an earlier disposal where the law says so. Figures by hand in each docstring."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

from monitor.ledger import Ledger
from monitor.ledger.lots import close_for_sale
from monitor.settings import load_settings
from monitor.tax.rules import TaxRules, tax_rules
from monitor.tax.summary import summarize

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
SOLD = datetime(2026, 2, 10, 12, tzinfo=UTC)


def rules(pack: str) -> TaxRules:
    return tax_rules(load_settings(overrides={"tax.jurisdiction": pack}).tax)


def ledger_with(tmp_path: Path, pack: str, lots: str) -> Ledger:
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + lots, encoding="utf-8")
    ledger = Ledger(tmp_path / "l.sqlite", tax=rules(pack)).open()
    ledger.import_lots(csv)
    return ledger


def sell(ledger: Ledger, lot_id: str, qty: str, proceeds: str) -> None:
    with ledger.db.transaction() as conn:
        close_for_sale(
            conn,
            intent_id="i1",
            alert_id="a1",
            plan=[(lot_id, D(qty))],
            filled=D(qty),
            net_proceeds=D(proceeds),
            sold_at=SOLD,
            rules=ledger.tax,
        )


def more(ledger: Ledger, tmp_path: Path, lots: str) -> None:
    csv = tmp_path / "more.csv"
    csv.write_text(HEADER + lots, encoding="utf-8")
    ledger.import_lots(csv)


TWO = "P1,a,w1,BTC,1,60000,2025-01-01\nP2,a,w2,BTC,1,40000,2025-01-01\n"


def test_uk_sale_is_booked_at_the_pool_cost_and_the_rest_keeps_the_pool(tmp_path: Path) -> None:
    """Pool: 2 BTC for 100,000 (50,000 each). P1 sold for 45,000: cost 50,000 (not its own
    60,000), a 5,000 loss; P2 carries the pool's other 50,000 (not its own 40,000). No
    holding period in the uk pack: the row is 'short' although the lot is over a year old."""
    ledger = ledger_with(tmp_path, "uk", TWO)
    sell(ledger, "P1", "1", "45000")
    (d,) = ledger.disposals()
    assert (d.cost_basis_usd, d.gain_usd, d.term, d.reason) == (
        D(50000),
        D(-5000),
        "short",
        "s104 1",
    )
    assert ledger.lot("P2")["open_cost_basis_usd"] == D(50000)  # type: ignore[index]


def test_uk_a_buy_within_30_days_rebooks_the_harvest(tmp_path: Path) -> None:
    """The same sale, then 1 BTC bought on 20 February for 44,000 (10 days later): bed and
    breakfast matches the sale to it: cost 44,000, a 1,000 gain, and the pool keeps the
    50,000 it had (2 units: P2 and the rebuy). The year's summary follows."""
    ledger = ledger_with(tmp_path, "uk", TWO)
    sell(ledger, "P1", "1", "45000")
    more(ledger, tmp_path, "R1,a,w1,BTC,1,44000,2026-02-20\n")
    (d,) = ledger.disposals()
    assert (d.cost_basis_usd, d.gain_usd) == (D(44000), D(1000))
    assert d.reason == "bed_and_breakfast 1 (2026-02-20)"
    open_costs = [ledger.lot(i)["open_cost_basis_usd"] for i in ("P2", "R1")]  # type: ignore[index]
    assert sum(open_costs, D(0)) == D(100000)
    year = summarize(ledger.tax, ledger.disposals(), 2025)  # 6 Apr 2025 - 5 Apr 2026
    assert (year.short_gains, year.short_losses) == (D(1000), D(0))


def test_ca_a_buy_within_30_days_makes_the_loss_superficial(tmp_path: Path) -> None:
    """ACB 50,000 a unit; 1 sold for 45,000: a 5,000 loss. 0.5 bought on 1 March (19 days
    later) and held on day 30: denied 5,000 x min(1, 0.5, 1.5)/1 = 2,500, added to the ACB:
    the 1.5 units held cost 50,000 + 20,000 + 2,500 = 72,500."""
    ledger = ledger_with(tmp_path, "ca", TWO)
    sell(ledger, "P1", "1", "45000")
    assert ledger.disposals()[0].disallowed_loss_usd == D(0)
    more(ledger, tmp_path, "R1,a,w1,BTC,0.5,20000,2026-03-01\n")
    (d,) = ledger.disposals()
    assert (d.gain_usd, d.disallowed_loss_usd) == (D(-5000), D(2500))
    assert d.reason.startswith("average cost (ACB); superficial_loss: 0.5 of 1 units")
    held = [ledger.lot(i)["open_cost_basis_usd"] for i in ("P2", "R1")]  # type: ignore[index]
    assert sum(held, D(0)) == D(72500)
