"""The ledger's per-lot alert state: armed or waiting to re-arm, last alert, deadline sent.

What the lot book's detection depends on beyond the lots themselves (monitor.book): a lot
that alerted stays quiet until the price climbs back to trigger * (1 + rearm_pct), and
alerts again no sooner than `cooldown_s` after its last alert. Kept here so a restart
(clean or killed) tells a user nothing twice: the detect stage writes the lots whose state
changed in the same transaction as the alerts they go with (`LedgerAlertStore.record_alerts`),
and the rest (re-arms, crossings inside the cooldown) in one batch at most every
`STATE_FLUSH_S` and at stop; `read_all` gives it back at start.

A lot with no row has the initial state (armed, never alerted). Rows of lots that have
since closed are left in place: they are ignored at start and cost a few bytes each.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import polars as pl

from monitor.lot_columns import NEVER, LotAlertState

READ_CHUNK = 200_000  # rows converted at a time (bounds the Python objects alive)
STATE_SCHEMA = {
    "lot_id": pl.String(),
    "armed": pl.Boolean(),
    "last_alert_ms": pl.Int64(),
    "deadline_sent": pl.Boolean(),
}

_UPSERT = (
    "INSERT INTO lot_alert_state (lot_id, armed, last_alert_ms, deadline_sent) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (lot_id) DO UPDATE SET armed = excluded.armed, "
    "last_alert_ms = excluded.last_alert_ms, deadline_sent = excluded.deadline_sent"
)


def write(conn: sqlite3.Connection, state: LotAlertState) -> None:
    """Upsert the state of `state`'s lots (inside the caller's transaction)."""
    if not len(state):
        return
    last: list[int | None] = [None if ms == NEVER else ms for ms in state.last_alert_ms.tolist()]
    conn.executemany(
        _UPSERT,
        zip(
            state.lot_ids,
            state.armed.astype(np.int64).tolist(),
            last,
            state.deadline_sent.astype(np.int64).tolist(),
            strict=True,
        ),
    )


def read_all(conn: sqlite3.Connection) -> pl.DataFrame:
    """Every lot's kept state (STATE_SCHEMA; last_alert_ms null: never alerted).

    A million rows read in about a second (SQLite's row stepping; one joined text per row,
    as `lot_reads.open_lots` does, measured no faster here), `READ_CHUNK` at a time.
    """
    cursor = conn.execute("SELECT lot_id, armed, last_alert_ms, deadline_sent FROM lot_alert_state")
    chunks: list[pl.DataFrame] = []
    while rows := cursor.fetchmany(READ_CHUNK):
        chunks.append(pl.DataFrame(rows, schema=STATE_SCHEMA, orient="row"))
    if not chunks:
        return pl.DataFrame(schema=STATE_SCHEMA)
    return pl.concat(chunks, rechunk=True)
