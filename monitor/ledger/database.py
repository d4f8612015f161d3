"""The SQLite connection behind the ledger: one file, WAL, one writer at a time.

SQLite calls are synchronous. Every ledger operation is a short transaction (a few rows,
indexed), so callers on the event loop make them directly; anything long (an import of
thousands of lots) runs in a thread with `asyncio.to_thread`. One connection is shared
by the loop and such threads, so every use holds `lock`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from decimal import Context, Decimal
from pathlib import Path

from monitor.errors import LedgerError
from monitor.ledger.migrations import migrate

MEMORY = ":memory:"
_EXACT = Context(prec=100)  # normalize() must never round an amount


class Database:
    """A migrated SQLite connection with `transaction()` and `read()` scopes."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.lock = threading.RLock()
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self.version = 0

    def open(self) -> Database:
        """Open (creating the file and its directory) and apply missing migrations."""
        if self._conn is not None:
            return self
        if self.path != MEMORY:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"{self.path}: cannot create the ledger's directory ({exc.strerror or exc})"
                ) from exc
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_s,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
                check_same_thread=False,  # shared with to_thread workers, guarded by `lock`
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: cannot open the ledger: {exc}") from exc
        try:
            if self.path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise LedgerError(f"{self.path}: SQLite refused WAL mode (got {mode})")
            # FULL: a committed intent survives a power cut, not only a process crash.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self.version = migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerError(unusable(self.path, exc)) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"{self.path}: the ledger is not open")
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        BEGIN IMMEDIATE takes the write lock up front, so two processes on one file wait
        for each other instead of failing half-way. A ledger SQLite cannot write (a
        read-only file) is a LedgerError saying so.
        """
        with self.lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LedgerError(unusable(self.path, exc)) from exc
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                conn.execute("ROLLBACK")
                if "readonly" in str(exc):
                    raise LedgerError(unusable(self.path, exc)) from exc
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Queries outside a write transaction (each statement sees a committed state)."""
        with self.lock:
            yield self.conn


def unusable(path: str, exc: sqlite3.Error) -> str:
    """What is wrong with a ledger SQLite refused to use, and what to do about it."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return (
            f"{path}: the ledger is read-only ({text}): harvest-monitor writes to it and to "
            "its -wal and -shm files beside it; make the file and its directory writable"
        )
    if "not a database" in text or "malformed" in text:
        return (
            f"{path}: not a harvest-monitor ledger or damaged ({text}): point [ledger] path "
            "at your ledger, or restore it from a backup"
        )
    if "unable to open" in text:
        return f"{path}: cannot open the ledger ({text}): check that its directory is writable"
    return f"{path}: not a usable ledger database: {text}"


def dec(value: Decimal) -> str:
    """Exact decimal text for a TEXT column: no exponent, no trailing zeros."""
    if not value.is_finite():
        raise LedgerError(f"refusing to store a non-finite amount {value}")
    return format(value.normalize(_EXACT), "f")


def undec(text: str) -> Decimal:
    """A TEXT column back to the exact Decimal."""
    return Decimal(text)
