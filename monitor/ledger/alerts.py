"""The ledger's alerts and dead-letter tables: the AlertStore of monitor/alerts/store.py.

Alerts are kept in insert order (`seq`), so a websocket subscriber that reconnects with
`since=<alert_id>` gets exactly what was recorded after that alert, and the executor and
each webhook subscription follow the same order from their named cursor (`cursors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import polars as pl

from monitor.alerts.store import DeadLetter, StoredAlert
from monitor.ledger import alert_state
from monitor.ledger.database import Database
from monitor.ledger.migrations import utc_now
from monitor.lot_columns import LotAlertState

ALERT_ID_PREFIX = "hma_"


class _Priced(msgspec.Struct):
    """The fields of an alert `latest_prices` reads (others are skipped unparsed)."""

    asset: str
    price: str
    tick_ts: str


_price_decoder = msgspec.json.Decoder(_Priced)


def since_key(when: str) -> str:
    """An ISO 8601 time as the alerts' own format (UTC, milliseconds, Z) for comparison.

    Raises ValueError for text that is not an ISO 8601 time.
    """
    parsed = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


class LedgerAlertStore:
    """AlertStore on the ledger's `alerts` and `dead_letters` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_alerts(
        self, alerts: Sequence[tuple[str, str, bytes]], lot_state: LotAlertState | None = None
    ) -> list[str]:
        """Store (alert_id, emitted_at, body) in one transaction; an alert_id already stored
        is ignored. Returns the ids newly stored (the ones to fan out), in the order given.
        `lot_state` (the lots whose alert state changed, monitor/ledger/alert_state.py) is
        written in the same transaction, so a lot is never alerted and not marked so.

        One INSERT per row, so each row's rowcount says whether it was new (executemany
        only gives the total).
        """
        if not alerts:
            if lot_state is not None:
                self.save_lot_state(lot_state)
            return []
        now = utc_now()
        fresh: list[str] = []
        with self._db.transaction() as conn:
            if lot_state is not None:
                alert_state.write(conn, lot_state)
            for alert_id, emitted_at, body in alerts:
                cursor = conn.execute(
                    "INSERT INTO alerts (alert_id, emitted_at, emitted_key, body, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING",
                    (alert_id, emitted_at, _emitted_key(emitted_at), bytes(body), now),
                )
                if cursor.rowcount == 1:
                    fresh.append(alert_id)
        return fresh

    def save_lot_state(self, lot_state: LotAlertState) -> None:
        """Write the alert state of lots that changed with no alert (re-armed, crossed
        inside their cooldown), in one transaction."""
        if not len(lot_state):
            return
        with self._db.transaction() as conn:
            alert_state.write(conn, lot_state)

    def lot_state(self) -> pl.DataFrame:
        """Every lot's kept alert state (monitor/ledger/alert_state.py STATE_SCHEMA)."""
        with self._db.read() as conn:
            return alert_state.read_all(conn)

    def alerts_since(self, since: str, limit: int = 10_000) -> list[StoredAlert]:
        """Alerts after `since`: an alert_id (strictly after it) or an ISO time (at/after it).

        An alert id the ledger does not know gives nothing (it cannot be placed in order).
        """
        with self._db.read() as conn:
            row = conn.execute("SELECT seq FROM alerts WHERE alert_id = ?", (since,)).fetchone()
            if row is not None:
                cursor = conn.execute(
                    "SELECT seq, alert_id, emitted_at, body FROM alerts WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (row[0], limit),
                )
            elif since.startswith(ALERT_ID_PREFIX):
                return []
            else:
                cursor = conn.execute(
                    "SELECT seq, alert_id, emitted_at, body FROM alerts WHERE emitted_key >= ? "
                    "ORDER BY seq LIMIT ?",
                    (since_key(since), limit),
                )
            return [StoredAlert(int(s), a, e, bytes(b)) for s, a, e, b in cursor.fetchall()]

    def alerts_after_seq(self, seq: int, limit: int = 1000) -> list[StoredAlert]:
        """Alerts with a sequence number above `seq`, in order (the executor's and the
        webhooks' cursors)."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT seq, alert_id, emitted_at, body FROM alerts WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [StoredAlert(int(s), a, e, bytes(b)) for s, a, e, b in rows]

    def alert(self, alert_id: str) -> StoredAlert | None:
        """One stored alert by id."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT seq, alert_id, emitted_at, body FROM alerts WHERE alert_id = ?",
                (alert_id,),
            ).fetchone()
        return None if row is None else StoredAlert(int(row[0]), row[1], row[2], bytes(row[3]))

    def cursor(self, name: str) -> int | None:
        """The last alert seq reader `name` handled (None: it never ran on this ledger)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_cursor(self, name: str, seq: int) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                (name, seq),
            )

    def count_after_seq(self, seq: int) -> int:
        """How many alerts have a seq above `seq` (a webhook subscription's backlog)."""
        with self._db.read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM alerts WHERE seq > ?", (seq,)).fetchone()
        return int(row[0])

    def last_seq(self) -> int:
        """The newest alert's seq (0 when there is none)."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])

    def latest_prices(self, scan: int = 10_000) -> dict[str, tuple[str, str]]:
        """asset -> (price, tick_ts) of its newest alert among the last `scan` alerts."""
        out: dict[str, tuple[str, str]] = {}
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT body FROM alerts ORDER BY seq DESC LIMIT ?", (scan,)
            ).fetchall()
        for (body,) in rows:
            try:
                alert = _price_decoder.decode(bytes(body))
            except msgspec.DecodeError:
                continue
            out.setdefault(alert.asset, (alert.price, alert.tick_ts))
        return out

    def add_dead_letter(
        self, subscription: str, alert_id: str, body: bytes, attempts: int, last_error: str
    ) -> None:
        """Park an alert; one letter per (subscription, alert): dead-lettered again (it was
        above the cursor when the process stopped) updates the letter instead of adding one."""
        now = utc_now()
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE dead_letters SET attempts = ?, last_error = ?, failed_at = ? "
                "WHERE subscription = ? AND alert_id = ?",
                (attempts, last_error, now, subscription, alert_id),
            ).rowcount
            if not updated:
                conn.execute(
                    "INSERT INTO dead_letters "
                    "(subscription, alert_id, body, attempts, last_error, failed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (subscription, alert_id, bytes(body), attempts, last_error, now),
                )

    def dead_letters(self, subscription: str | None = None) -> list[DeadLetter]:
        query = (
            "SELECT id, subscription, alert_id, body, attempts, last_error, failed_at "
            "FROM dead_letters"
        )
        with self._db.read() as conn:
            if subscription is None:
                rows = conn.execute(query + " ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    query + " WHERE subscription = ? ORDER BY id", (subscription,)
                ).fetchall()
        return [DeadLetter(int(i), s, a, bytes(b), int(n), e, f) for i, s, a, b, n, e, f in rows]

    def remove_dead_letter(self, dead_letter_id: int) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))


def _emitted_key(emitted_at: str) -> str:
    try:
        return since_key(emitted_at)
    except ValueError:
        return emitted_at  # kept as given: still stored, only `since=<time>` cannot place it
