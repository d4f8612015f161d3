"""The ledger's schema, as numbered migrations applied in order (versioned in code).

A migration is never edited once released: change the schema by appending one. The
`schema_version` table records each applied version, so opening a ledger applies only
what is missing and re-opening an up-to-date ledger changes nothing.

Money and quantities are TEXT holding an exact decimal (`format(d, "f")`), never REAL.
Times are ISO 8601 UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), which sorts as time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.errors import LedgerError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "lots, lot events, alerts, dead letters, intents, orders, fills, disposals, cursors",
        """
        CREATE TABLE lots (
            lot_id TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            wallet TEXT NOT NULL,
            asset TEXT NOT NULL,
            quantity TEXT NOT NULL,             -- as acquired
            cost_basis_usd TEXT NOT NULL,       -- as acquired, fees included
            acquired_at TEXT NOT NULL,
            open_quantity TEXT NOT NULL,        -- what is still held
            open_cost_basis_usd TEXT NOT NULL,  -- basis of what is still held
            status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
            source TEXT NOT NULL,               -- import:<file> | rebuy:<intent_id>
            reserved_by TEXT,                   -- the intent selling it, while one is active
            created_at TEXT NOT NULL
        );
        CREATE INDEX lots_by_status ON lots (status, asset);

        CREATE TABLE lot_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lot_id TEXT NOT NULL REFERENCES lots (lot_id),
            kind TEXT NOT NULL
                CHECK (kind IN ('opened', 'partially_closed', 'closed', 'rebuy_opened')),
            quantity TEXT NOT NULL,             -- units opened or closed by this event
            cost_basis_usd TEXT NOT NULL,       -- basis opened or closed by this event
            proceeds_usd TEXT,                  -- closing events: net proceeds
            intent_id TEXT,
            at TEXT NOT NULL,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX lot_events_by_lot ON lot_events (lot_id, id);

        CREATE TABLE alerts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL UNIQUE,
            emitted_at TEXT NOT NULL,           -- as in the alert
            emitted_key TEXT NOT NULL,          -- emitted_at normalized (ms, Z) for `since`
            body BLOB NOT NULL,
            recorded_at TEXT NOT NULL
        );
        CREATE INDEX alerts_by_time ON alerts (emitted_key);

        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscription TEXT NOT NULL,
            alert_id TEXT NOT NULL,
            body BLOB NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            failed_at TEXT NOT NULL
        );
        CREATE INDEX dead_letters_by_subscription ON dead_letters (subscription, id);

        CREATE TABLE intents (
            intent_id TEXT PRIMARY KEY,         -- idempotency key, derived from the alert
            alert_id TEXT NOT NULL UNIQUE,
            mode TEXT NOT NULL CHECK (mode IN ('paper', 'live')),
            account TEXT NOT NULL,
            wallet TEXT NOT NULL,
            asset TEXT NOT NULL,
            venue TEXT NOT NULL,
            symbol TEXT NOT NULL,               -- unified BASE/QUOTE the orders trade
            lots TEXT NOT NULL,                 -- JSON [[lot_id, quantity], ...], sell order
            quantity TEXT NOT NULL,             -- units to sell
            price TEXT NOT NULL,                -- the alert's consolidated USD price
            rebuy_asset TEXT NOT NULL,          -- '' when there is no rebuy
            rebuy_after TEXT NOT NULL,          -- earliest time of the rebuy
            disallowed_loss_usd TEXT NOT NULL,  -- the plan's wash-sale / superficial-loss part
            state TEXT NOT NULL CHECK (state IN ('planned', 'sell_submitted', 'sell_filled',
                'sell_partially_filled', 'rebuy_submitted', 'done', 'failed', 'cancelled')),
            reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX intents_by_state ON intents (state);

        CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY,
            intent_id TEXT NOT NULL REFERENCES intents (intent_id),
            leg TEXT NOT NULL CHECK (leg IN ('sell', 'rebuy')),
            venue TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
            amount TEXT NOT NULL,
            status TEXT NOT NULL,               -- submitting | open | filled | partially_filled
                                                -- | canceled | rejected
            venue_order_id TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (intent_id, leg)
        );

        CREATE TABLE fills (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_order_id TEXT NOT NULL UNIQUE REFERENCES orders (client_order_id),
            intent_id TEXT NOT NULL,
            quantity TEXT NOT NULL,
            price TEXT NOT NULL,                -- average fill price, USD
            notional_usd TEXT NOT NULL,         -- quantity x price as the venue counted it
            fee_usd TEXT NOT NULL,
            at TEXT NOT NULL
        );

        CREATE TABLE disposals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lot_id TEXT NOT NULL REFERENCES lots (lot_id),
            account TEXT NOT NULL,
            wallet TEXT NOT NULL,
            asset TEXT NOT NULL,
            quantity TEXT NOT NULL,
            acquired_on TEXT NOT NULL,          -- YYYY-MM-DD
            sold_on TEXT NOT NULL,              -- YYYY-MM-DD
            proceeds_usd TEXT NOT NULL,         -- net of the sale's fees
            cost_basis_usd TEXT NOT NULL,
            term TEXT NOT NULL CHECK (term IN ('short', 'long')),
            harvest INTEGER NOT NULL,
            alert_id TEXT NOT NULL,
            intent_id TEXT NOT NULL,
            disallowed_loss_usd TEXT NOT NULL
        );
        CREATE INDEX disposals_by_day ON disposals (sold_on);

        CREATE TABLE cursors (
            name TEXT PRIMARY KEY,              -- a reader of the alerts table (executor)
            seq INTEGER NOT NULL                -- the last alert seq it has handled
        );
        """,
    ),
    Migration(
        2,
        "import batches; lot removals (lots imported by mistake, taken out with a record)",
        """
        CREATE TABLE import_batches (
            batch INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,               -- the lots' source, import:<file name>
            file TEXT NOT NULL,                 -- the file as it was given
            lots INTEGER NOT NULL,              -- lots added by this import
            imported_at TEXT NOT NULL
        );
        ALTER TABLE lots ADD COLUMN batch INTEGER REFERENCES import_batches (batch);
        -- Lots imported before batches existed: one batch per (source, import time).
        INSERT INTO import_batches (source, file, lots, imported_at)
            SELECT source, substr(source, 8), COUNT(*), created_at FROM lots
            WHERE source LIKE 'import:%' GROUP BY source, created_at ORDER BY MIN(rowid);
        UPDATE lots SET batch = (
            SELECT b.batch FROM import_batches b
            WHERE b.source = lots.source AND b.imported_at = lots.created_at
        ) WHERE source LIKE 'import:%';

        CREATE TABLE lot_removals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lot_id TEXT NOT NULL UNIQUE REFERENCES lots (lot_id),
            batch INTEGER,                      -- the lot's import batch
            quantity TEXT NOT NULL,             -- what was open of it when removed
            cost_basis_usd TEXT NOT NULL,       -- the basis of that
            reason TEXT NOT NULL,
            removed_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        3,
        "per-lot alert state: armed, last alert, deadline alert sent (kept across restarts)",
        """
        CREATE TABLE lot_alert_state (
            lot_id TEXT PRIMARY KEY,            -- lots.lot_id (closed lots' rows are ignored)
            armed INTEGER NOT NULL,             -- 0: alerted, waits for trigger*(1+rearm_pct)
            last_alert_ms INTEGER,              -- epoch ms of its last alert; NULL: never
            deadline_sent INTEGER NOT NULL      -- its deadline alert went out
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        4,
        "the writer lock: which daemon writes this ledger (monitor/ledger/lock.py)",
        """
        CREATE TABLE writer_lock (
            name TEXT PRIMARY KEY,              -- 'writer': one row at most
            host TEXT NOT NULL,                 -- the holder's host name
            pid INTEGER NOT NULL,               -- its process id on that host
            role TEXT NOT NULL,                 -- run | detect | demo | execute | replay
            since TEXT NOT NULL,                -- when it took the lock
            heartbeat_at TEXT NOT NULL,         -- renewed every lease/3; stale after the lease
            lease_s REAL NOT NULL,              -- the holder's lease
            token INTEGER NOT NULL              -- +1 at each take-over: a fencing token
        );
        """,
    ),
    Migration(
        5,
        "disposals: the reason the rule pack booked them so (matching rule, window)",
        """
        ALTER TABLE disposals ADD COLUMN reason TEXT NOT NULL DEFAULT '';
        CREATE INDEX disposals_by_group ON disposals (account, asset);
        """,
    ),
)


def utc_now() -> str:
    """Now as the ledger's time text."""
    return iso(datetime.now(UTC))


def iso(when: datetime) -> str:
    """A datetime as the ledger's time text (UTC, microseconds, `Z`); naive means UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration (0 for a new file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply the missing migrations, each in its own transaction; returns the new version.

    `conn` must be in autocommit mode (isolation_level=None). A ledger written by a newer
    version of harvest-monitor is refused rather than misread.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise LedgerError(f"migrations must be numbered 1..n in order, got {versions}")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    version = current_version(conn)
    if version > len(migrations):
        raise LedgerError(
            f"the ledger has schema version {version}, this harvest-monitor knows up to "
            f"{len(migrations)}: upgrade harvest-monitor (or point [ledger] path elsewhere)"
        )
    for migration in migrations[version:]:
        conn.execute("BEGIN IMMEDIATE")
        # Another process opening the same ledger may have applied it between our read of
        # the version and this write lock: re-read under the lock, never apply twice.
        if current_version(conn) >= migration.version:
            conn.execute("COMMIT")
            version = migration.version
            continue
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, utc_now()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version = migration.version
    return version


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    out: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        code = line.split("--", 1)[0]
        pending += code
        if sqlite3.complete_statement(pending):
            if pending.strip():
                out.append(pending.strip())
            pending = ""
    if pending.strip():
        out.append(pending.strip())
    return out
