"""Property: what the plan says a sale realizes is what the ledger books after the fill.

For random histories (buys into two wallets, sales of some of a wallet's lots, days apart)
under every pack, each sale is first planned against the lot book built from the ledger's
open lots (`monitor.plan.realized`, as an alert would), then recorded in the ledger
(`close_for_sale`, as a fill is): lot by lot, the units, proceeds, cost, disallowed loss
and term must be equal, exactly.

The us pack with a 30-day wash-sale window keeps its sales 61 days apart: a replacement
unit is used once (IRC 1091), and which were used by an earlier sale is history the book
does not carry. The ca pack keeps them 31 days apart: a sale within 30 days of a
superficial loss changes what is held at the end of that loss's period, so the loss,
and the pool the later sale is booked from, are re-costed by it (docs/tax.md, "What is
modelled loosely").
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.book import build_book
from monitor.ledger import Ledger
from monitor.ledger.lots import close_for_sale
from monitor.plan import pack_order, realized
from monitor.portfolio import LOT_SCHEMA
from monitor.settings import load_settings
from monitor.tax.rules import tax_rules
from monitor.tax.selection import order_lots, take

PACKS: list[tuple[str, dict[str, Any]]] = [
    ("us", {}),
    ("us", {"tax.wash_sale_days": 30}),
    ("uk", {}),
    ("ca", {}),
    ("de", {}),
    ("au", {}),
]
START = datetime(2025, 1, 1, 12, tzinfo=UTC)

step = st.tuples(
    st.sampled_from(["buy", "buy", "sell"]),
    st.sampled_from(["w1", "w2"]),
    st.integers(min_value=0, max_value=40),  # days after the previous step
    st.integers(min_value=1, max_value=8),  # buy: half units; sell: eighths of the wallet
    st.integers(min_value=10, max_value=200),  # unit price
)


def frame(lot_id: str, wallet: str, qty: D, cost: D, when: datetime) -> pl.DataFrame:
    return pl.DataFrame(
        [(lot_id, "a", wallet, "BTC", qty, cost, when)], schema=LOT_SCHEMA, orient="row"
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=st.sampled_from(PACKS), steps=st.lists(step, min_size=2, max_size=14))
def test_the_plan_realizes_what_the_ledger_books(
    pack: tuple[str, dict[str, Any]], steps: list[tuple[str, str, int, int, int]]
) -> None:
    name, extra = pack
    config = load_settings(overrides={"tax.jurisdiction": name, **extra})
    rules = tax_rules(config.tax)
    spacing = {"us": 61, "ca": 31}.get(name, 0) if rules.window_days > 0 else 0
    with tempfile.TemporaryDirectory() as scratch:
        ledger = Ledger(Path(scratch) / "l.sqlite", tax=rules).open()
        try:
            when, last_sale = START, None
            for n, (kind, wallet, gap, size, price) in enumerate(steps):
                when = when + timedelta(days=gap, minutes=1)
                if kind == "buy":
                    qty = D(size) / 2
                    lot = frame(f"L{n}", wallet, qty, qty * price, when)
                    ledger.import_frame(lot, f"step{n}")
                    continue
                if last_sale is not None and when - last_sale < timedelta(days=spacing):
                    continue
                book = build_book(config, ledger.open_lots(), rules)
                rows = book.wallet_rows("a", wallet, "BTC")
                if len(rows) == 0:
                    continue
                lots = book.columns.rows(rows)
                held = sum((lot.quantity for lot in lots), D(0))
                wanted = held * size / 8
                how = "fifo" if rules.pack.basis == "fifo" else pack_order(rules, "max_loss")
                takes = take(order_lots(lots, how, D(price)), wanted)
                plan = realized(book, rules, "a", wallet, "BTC", takes, D(price), when)
                with ledger.db.transaction() as conn:
                    booked = close_for_sale(
                        conn,
                        intent_id=f"i{n}",
                        alert_id=f"a{n}",
                        plan=[(t.lot.lot_id, t.quantity) for t in takes],
                        filled=wanted,
                        net_proceeds=wanted * price,
                        sold_at=when,
                        rules=rules,
                    )
                last_sale = when

                def rows_of(ds: Any) -> list[tuple[object, ...]]:
                    return [
                        (d.lot_id, d.quantity, d.proceeds_usd, d.cost_basis_usd,
                         d.disallowed_loss_usd, d.term)
                        for d in ds
                    ]  # fmt: skip

                assert rows_of(plan.rows) == rows_of(booked), (name, extra, n)
        finally:
            ledger.close()
