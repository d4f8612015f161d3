"""Harvest intents, their orders and fills: the executor's durable state machine.

    planned -> sell_submitted -> sell_filled | sell_partially_filled
            -> rebuy_submitted -> done          (or failed / cancelled, with the reason)

An intent is written (and its lots reserved) before any order exists; an order row is
written (`submitting`) before the order is sent; a fill and everything it changes (the
lots closed, their events, the disposals, the next state) is one transaction. So after a
crash the ledger says exactly which orders may be at the venue, and a filled sell never
exists without its lot events.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from monitor.ledger import books
from monitor.ledger import lots as lot_rows
from monitor.ledger.database import Database, dec, undec
from monitor.ledger.migrations import iso, utc_now
from monitor.tax.disposal import Disposal
from monitor.tax.rules import TaxRules

State = Literal[
    "planned",
    "sell_submitted",
    "sell_filled",
    "sell_partially_filled",
    "rebuy_submitted",
    "done",
    "failed",
    "cancelled",
]
STATES: tuple[State, ...] = (
    "planned",
    "sell_submitted",
    "sell_filled",
    "sell_partially_filled",
    "rebuy_submitted",
    "done",
    "failed",
    "cancelled",
)
ACTIVE: tuple[State, ...] = STATES[:5]
SUBMITTED: tuple[State, ...] = ("sell_submitted", "rebuy_submitted")
Leg = Literal["sell", "rebuy"]

_COLUMNS = (
    "intent_id, alert_id, mode, account, wallet, asset, venue, symbol, lots, quantity, price, "
    "rebuy_asset, rebuy_after, disallowed_loss_usd, state, reason"
)


@dataclass(frozen=True, slots=True)
class Intent:
    """One harvest to carry out: sell `lots` (lot_id, units) and maybe buy back."""

    intent_id: str
    alert_id: str
    mode: Literal["paper", "live"]
    account: str
    wallet: str
    asset: str
    venue: str
    symbol: str
    lots: tuple[tuple[str, Decimal], ...]
    quantity: Decimal
    price: Decimal  # the alert's consolidated USD price
    rebuy_asset: str  # '' when there is no rebuy
    rebuy_after: datetime
    disallowed_loss_usd: Decimal = Decimal(0)  # of the planned sale, by the rule pack
    state: State = "planned"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderRow:
    client_order_id: str
    intent_id: str
    leg: Leg
    symbol: str
    side: Literal["buy", "sell"]
    amount: Decimal
    status: str
    venue_order_id: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    """An order's execution in USD: `quantity` units at `price` for `notional_usd`."""

    venue_order_id: str
    status: str  # the venue's final order status (filled, partially_filled, canceled, ...)
    quantity: Decimal
    price: Decimal  # average, USD
    notional_usd: Decimal  # what the units cost or fetched before fees (the venue's sum)
    fee_usd: Decimal
    at: datetime
    received_quantity: Decimal | None = None  # a buy whose fee was taken in the asset


class IntentTable:
    """Reads and state transitions of intents; every transition is one transaction."""

    def __init__(self, db: Database, tax: TaxRules | None = None) -> None:
        self._db = db
        self._tax = tax  # the pack sales are booked by (None: the us pack)

    def plan(self, intent: Intent, at: datetime | None = None) -> tuple[Intent, bool]:
        """Record a new intent and reserve its lots; (existing intent, False) if the alert
        already has one. An intent whose lots cannot be reserved is stored `cancelled`.
        `at`: when it was planned (replay: the tick's time; default now)."""
        with self._db.transaction() as conn:
            existing = _select(conn, "alert_id = ?", (intent.alert_id,))
            if existing:
                return existing[0], False
            reason = lot_rows.reserve(conn, intent.intent_id, intent.lots)
            state: State = "cancelled" if reason else "planned"
            now = utc_now() if at is None else iso(at)
            conn.execute(
                f"INSERT INTO intents ({_COLUMNS}, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    intent.intent_id,
                    intent.alert_id,
                    intent.mode,
                    intent.account,
                    intent.wallet,
                    intent.asset,
                    intent.venue,
                    intent.symbol,
                    json.dumps([[lot, dec(q)] for lot, q in intent.lots]),
                    dec(intent.quantity),
                    dec(intent.price),
                    intent.rebuy_asset,
                    iso(intent.rebuy_after),
                    dec(intent.disallowed_loss_usd),
                    state,
                    reason,
                    now,
                    now,
                ),
            )
        return _replace(intent, state, reason), True

    def get(self, intent_id: str) -> Intent | None:
        with self._db.read() as conn:
            found = _select(conn, "intent_id = ?", (intent_id,))
        return found[0] if found else None

    def in_states(self, states: tuple[State, ...]) -> list[Intent]:
        """Intents in any of `states`, oldest first."""
        marks = ",".join("?" * len(states))
        with self._db.read() as conn:
            return _select(conn, f"state IN ({marks})", states)

    def counts(self) -> dict[str, int]:
        """Intents per state (every state present, zero included)."""
        out: dict[str, int] = dict.fromkeys(STATES, 0)
        with self._db.read() as conn:
            for state, n in conn.execute("SELECT state, COUNT(*) FROM intents GROUP BY state"):
                out[state] = int(n)
        return out

    def order(self, intent_id: str, leg: Leg) -> OrderRow | None:
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT client_order_id, intent_id, leg, symbol, side, amount, status, "
                "venue_order_id FROM orders WHERE intent_id = ? AND leg = ?",
                (intent_id, leg),
            ).fetchone()
        if row is None:
            return None
        return OrderRow(row[0], row[1], row[2], row[3], row[4], undec(row[5]), row[6], row[7])

    def orders(self) -> list[OrderRow]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT client_order_id, intent_id, leg, symbol, side, amount, status, "
                "venue_order_id FROM orders ORDER BY rowid"
            ).fetchall()
        return [OrderRow(r[0], r[1], r[2], r[3], r[4], undec(r[5]), r[6], r[7]) for r in rows]

    def sell_notional_since(self, since: datetime, *, by_fill_time: bool = False) -> Decimal:
        """USD notional (amount x the intent's price) of sell orders created since `since`
        (`by_fill_time`, replay: filled since `since` in the stream's time)."""
        total = Decimal(0)
        query = "SELECT o.amount, i.price FROM orders o JOIN intents i USING (intent_id) " + (
            "JOIN fills f USING (client_order_id) WHERE o.leg = 'sell' AND f.at >= ?"
            if by_fill_time
            else "WHERE o.leg = 'sell' AND o.created_at >= ?"
        )
        with self._db.read() as conn:
            for amount, price in conn.execute(query, (iso(since),)):
                total += undec(amount) * undec(price)
        return total

    def begin_order(
        self, intent: Intent, leg: Leg, client_order_id: str, side: str, amount: Decimal
    ) -> None:
        """Write the order (`submitting`) and move the intent to `<leg>_submitted`, before
        the order is sent. Re-running it for the same order changes nothing."""
        now = utc_now()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO orders (client_order_id, intent_id, leg, venue, symbol, side, "
                "amount, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'submitting', ?, ?) "
                "ON CONFLICT (client_order_id) DO NOTHING",
                (
                    client_order_id,
                    intent.intent_id,
                    leg,
                    intent.venue,
                    intent.symbol if leg == "sell" else _rebuy_symbol(intent),
                    side,
                    dec(amount),
                    now,
                    now,
                ),
            )
            _set_state(
                conn, intent.intent_id, "sell_submitted" if leg == "sell" else "rebuy_submitted"
            )

    def record_sell(self, intent: Intent, client_order_id: str, fill: FillRecord) -> list[Disposal]:
        """The sell's outcome, all at once: order, fill, lots closed, disposals, next state.

        Nothing filled: the intent fails with the venue's status. No rebuy: it is done.
        """
        with self._db.transaction() as conn:
            _update_order(conn, client_order_id, fill)
            if fill.quantity <= 0:
                _end(conn, intent.intent_id, "failed", f"sell order {fill.status}, nothing filled")
                return []
            _insert_fill(conn, client_order_id, intent.intent_id, fill)
            disposals = lot_rows.close_for_sale(
                conn,
                intent_id=intent.intent_id,
                alert_id=intent.alert_id,
                plan=intent.lots,
                filled=fill.quantity,
                net_proceeds=fill.notional_usd - fill.fee_usd,
                sold_at=fill.at,
                rules=self._tax,
            )
            if not intent.rebuy_asset:
                _end(conn, intent.intent_id, "done", "")
            else:
                partial = fill.quantity < intent.quantity
                _set_state(
                    conn, intent.intent_id, "sell_partially_filled" if partial else "sell_filled"
                )
        return disposals

    def record_rebuy(self, intent: Intent, client_order_id: str, fill: FillRecord) -> str:
        """The rebuy's outcome: order, fill, the new lot, done. Returns the new lot_id
        ('' when nothing filled: the intent then fails, its sale stays recorded)."""
        with self._db.transaction() as conn:
            _update_order(conn, client_order_id, fill)
            if fill.quantity <= 0:
                _end(conn, intent.intent_id, "failed", f"rebuy order {fill.status}, nothing filled")
                return ""
            _insert_fill(conn, client_order_id, intent.intent_id, fill)
            received = (
                fill.received_quantity if fill.received_quantity is not None else fill.quantity
            )
            lot_id = lot_rows.open_rebuy_lot(
                conn,
                intent_id=intent.intent_id,
                account=intent.account,
                wallet=intent.wallet,
                asset=intent.rebuy_asset,
                quantity=received,
                cost_basis=fill.notional_usd + fill.fee_usd,
                acquired_at=fill.at,
            )
            books.rebook(  # a buy can re-cost earlier sales (bed and breakfast, windows)
                conn, self._tax or lot_rows.default_rules(), intent.account, intent.rebuy_asset
            )
            _end(conn, intent.intent_id, "done", "")
        return lot_id

    def end(self, intent_id: str, state: Literal["failed", "cancelled"], reason: str) -> None:
        """Stop an intent (its reservations lifted); its recorded fills stay."""
        with self._db.transaction() as conn:
            _end(conn, intent_id, state, reason)

    def mark_order(self, client_order_id: str, status: str, error: str = "") -> None:
        """Note an order's venue status without a fill (rejected, open, ...)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE orders SET status = ?, error = ?, updated_at = ? WHERE client_order_id = ?",
                (status, error[:500], utc_now(), client_order_id),
            )

    def sold_quantity(self, intent_id: str) -> Decimal:
        """Units the intent's sell filled (0 before a fill)."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT f.quantity FROM fills f JOIN orders o USING (client_order_id) "
                "WHERE o.intent_id = ? AND o.leg = 'sell'",
                (intent_id,),
            ).fetchone()
        return undec(row[0]) if row else Decimal(0)

    def fills(self) -> list[tuple[str, str, Decimal, Decimal, Decimal]]:
        """(intent_id, leg, quantity, price, fee_usd) of every fill, in order."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT f.intent_id, o.leg, f.quantity, f.price, f.fee_usd FROM fills f "
                "JOIN orders o USING (client_order_id) ORDER BY f.id"
            ).fetchall()
        return [(r[0], r[1], undec(r[2]), undec(r[3]), undec(r[4])) for r in rows]


def _rebuy_symbol(intent: Intent) -> str:
    quote = intent.symbol.partition("/")[2]
    return f"{intent.rebuy_asset}/{quote}"


def rebuy_symbol(intent: Intent) -> str:
    """The unified symbol the rebuy trades: the rebuy asset against the sale's quote."""
    return _rebuy_symbol(intent)


def _select(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[Intent]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM intents WHERE {where} ORDER BY created_at, intent_id", args
    ).fetchall()
    return [
        Intent(
            intent_id=r[0],
            alert_id=r[1],
            mode=r[2],
            account=r[3],
            wallet=r[4],
            asset=r[5],
            venue=r[6],
            symbol=r[7],
            lots=tuple((lot, undec(q)) for lot, q in json.loads(r[8])),
            quantity=undec(r[9]),
            price=undec(r[10]),
            rebuy_asset=r[11],
            rebuy_after=lot_rows.parse_time(r[12]),
            disallowed_loss_usd=undec(r[13]),
            state=r[14],
            reason=r[15],
        )
        for r in rows
    ]


def _replace(intent: Intent, state: State, reason: str) -> Intent:
    return replace(intent, state=state, reason=reason)


def _set_state(conn: sqlite3.Connection, intent_id: str, state: State, reason: str = "") -> None:
    conn.execute(
        "UPDATE intents SET state = ?, reason = ?, updated_at = ? WHERE intent_id = ?",
        (state, reason, utc_now(), intent_id),
    )


def _end(conn: sqlite3.Connection, intent_id: str, state: State, reason: str) -> None:
    _set_state(conn, intent_id, state, reason)
    lot_rows.release(conn, intent_id)


def _update_order(conn: sqlite3.Connection, client_order_id: str, fill: FillRecord) -> None:
    conn.execute(
        "UPDATE orders SET status = ?, venue_order_id = ?, updated_at = ? "
        "WHERE client_order_id = ?",
        (fill.status, fill.venue_order_id, utc_now(), client_order_id),
    )


def _insert_fill(
    conn: sqlite3.Connection, client_order_id: str, intent_id: str, fill: FillRecord
) -> None:
    conn.execute(
        "INSERT INTO fills (client_order_id, intent_id, quantity, price, notional_usd, fee_usd, "
        "at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            client_order_id,
            intent_id,
            dec(fill.quantity),
            dec(fill.price),
            dec(fill.notional_usd),
            dec(fill.fee_usd),
            iso(fill.at),
        ),
    )
