"""The ledger's tax books: a group's disposals and open costs, booked by the rule pack.

The ledger records what happened (lots acquired, the lots each sale closed, at what
proceeds); `rebook` books one (account, asset) again from that history with the pack's
matching (`monitor.tax.matching.book`, the same function the plan uses) and writes the
result: the group's disposals (one row per lot part sold, with the reason) and each lot's
open cost. It runs in the transaction of every change to the group (a sale, a rebuy, an
import), so a later acquisition that re-costs an earlier disposal (uk bed and breakfast,
ca superficial loss, us wash sale when enabled) changes `tax summary` and `report
harvests` at once.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from monitor.ledger.database import dec, undec
from monitor.ledger.lots import insert_disposal, parse_time
from monitor.tax.matching import Booked, Buy, Sale, book
from monitor.tax.rules import TaxRules

ZERO = Decimal(0)


def history(conn: sqlite3.Connection, account: str, asset: str) -> tuple[list[Buy], list[Sale]]:
    """Every acquisition and every sale of (account, asset) the ledger holds."""
    buys = [
        Buy(lot_id, wallet, parse_time(at), undec(q), undec(c), created)
        for lot_id, wallet, at, q, c, created in conn.execute(
            "SELECT lot_id, wallet, acquired_at, quantity, cost_basis_usd, created_at "
            "FROM lots WHERE account = ? AND asset = ? AND NOT EXISTS "
            "(SELECT 1 FROM lot_removals r WHERE r.lot_id = lots.lot_id) ORDER BY rowid",
            (account, asset),
        )
    ]
    parts: dict[str, list[tuple[str, Decimal, Decimal]]] = defaultdict(list)
    first: dict[str, tuple[str, str, str]] = {}
    for lot_id, q, proceeds, intent_id, at, recorded, wallet in conn.execute(
        "SELECT e.lot_id, e.quantity, e.proceeds_usd, e.intent_id, e.at, e.recorded_at, "
        "l.wallet FROM lot_events e JOIN lots l USING (lot_id) "
        "WHERE l.account = ? AND l.asset = ? AND e.kind IN ('closed', 'partially_closed') "
        "ORDER BY e.id",
        (account, asset),
    ):
        key = intent_id or f"event:{lot_id}:{at}"
        parts[key].append((lot_id, undec(q), undec(proceeds or "0")))
        first.setdefault(key, (at, recorded, wallet))
    alerts = dict(
        conn.execute(
            "SELECT intent_id, alert_id FROM disposals WHERE account = ? AND asset = ? "
            "AND alert_id != '' UNION SELECT intent_id, alert_id FROM intents "
            "WHERE account = ? AND asset = ?",
            (account, asset, account, asset),
        ).fetchall()
    )
    sales = [
        Sale(
            sale_id=key,
            wallet=first[key][2],
            at=parse_time(first[key][0]),
            parts=tuple(found),
            harvest=True,
            alert_id=alerts.get(key, ""),
            seq=first[key][1],
        )
        for key, found in parts.items()
    ]
    return buys, sales


def has_sales(conn: sqlite3.Connection, account: str, asset: str) -> bool:
    """Whether (account, asset) has a recorded sale (only then can an import re-cost it)."""
    row = conn.execute(
        "SELECT 1 FROM disposals WHERE account = ? AND asset = ? LIMIT 1", (account, asset)
    ).fetchone()
    return row is not None


def rebook(conn: sqlite3.Connection, rules: TaxRules, account: str, asset: str) -> Booked:
    """Book (account, asset) again by `rules` and write the disposals and open costs."""
    buys, sales = history(conn, account, asset)
    booked = book(rules, account, asset, buys, sales)
    conn.execute("DELETE FROM disposals WHERE account = ? AND asset = ?", (account, asset))
    for sale in sorted(sales, key=lambda s: (s.at, s.seq)):
        for d in booked.sales[sale.sale_id].rows:
            insert_disposal(conn, d, sale.sale_id)
    for b in buys:
        quantity, cost = booked.open.get(b.lot_id, (ZERO, ZERO))
        conn.execute(
            "UPDATE lots SET open_quantity = ?, open_cost_basis_usd = ?, status = ? "
            "WHERE lot_id = ?",
            (dec(quantity), dec(cost), "open" if quantity > 0 else "closed", b.lot_id),
        )
    return booked


def rebook_groups(
    conn: sqlite3.Connection, rules: TaxRules, groups: Iterable[tuple[str, str]]
) -> None:
    """Rebook each (account, asset) of `groups` that has a sale (after an import)."""
    for account, asset in sorted(set(groups)):
        if has_sales(conn, account, asset):
            rebook(conn, rules, account, asset)
