"""The ledger's writer lock: one daemon writes a ledger at a time.

Two daemons on one ledger would both execute the same harvest intents, both deliver the
same webhooks and both record fills (the second failing half-way on
`fills.client_order_id`). So a daemon (`run`, `detect`, `demo`, `execute`, a paper
`replay`) takes the lock before it writes, and a second one is refused with one line that
names the holder:

    the ledger var/ledger.sqlite is in use by `run` (pid 4242 on host-a since
    2026-12-04T17:00:00Z, alive 2s ago): stop it first, or point [ledger] path elsewhere

The lock is a row in the ledger itself (`writer_lock`: host, pid, role, since, heartbeat,
lease, token), taken and renewed in write transactions, so it works wherever the ledger
does and `lots`, `tax summary`, `report` and `alerts tail`, which only read, never need it.
The holder renews its heartbeat every lease/3 (`hold`). A holder is dead, and its lock
taken over (logged with the old holder), when it ran on another host and its heartbeat
is older than its lease; on this host, at once when its pid is gone (a kill -9, a crash),
and otherwise only after ten leases (a live process stalled by long work keeps it). Each take-over
increments `token` (a fencing token): a holder that finds another token in the row has
lost the lock and stops (`LedgerLockLost`) rather than write beside the new one.

Errors: LedgerError > LedgerBusyError (refused at start), LedgerLockLost (lost while held).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.errors import LedgerError
from monitor.ledger.database import Database
from monitor.ledger.migrations import utc_now

log = logging.getLogger(__name__)

LOCK_NAME = "writer"
DEFAULT_LEASE_S = 30.0
SAME_HOST_LEASES = 10  # a live pid on this host silent this many leases is a reused pid


class LedgerBusyError(LedgerError):
    """Another live process holds the ledger's writer lock; the message names it."""


class LedgerLockLost(LedgerError):
    """This process's writer lock was taken over (it was thought dead): it must stop."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds the writer lock, as recorded in the ledger."""

    host: str
    pid: int
    role: str
    since: str
    heartbeat_at: str
    lease_s: float
    token: int

    def silent_s(self, now: datetime | None = None) -> float:
        """Seconds since its last heartbeat (0 when the time cannot be read)."""
        try:
            beat = datetime.fromisoformat(self.heartbeat_at.replace("Z", "+00:00"))
        except ValueError:
            return 0.0
        return max(0.0, ((now or datetime.now(UTC)) - beat).total_seconds())

    def describe(self) -> str:
        return (
            f"`{self.role}` (pid {self.pid} on {self.host} since {self.since}, "
            f"alive {self.silent_s():.0f}s ago)"
        )


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WriterLock:
    """The writer lock of one ledger, for one process in one role.

    `acquire()` (synchronous: before anything is written), then `hold()` as a supervised
    task for as long as the process writes, then `release()`.
    """

    def __init__(
        self,
        db: Database,
        role: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self._db = db
        self.role = role
        self.lease_s = lease_s
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.token: int | None = None
        self._renewed = time.monotonic()

    @property
    def held(self) -> bool:
        return self.token is not None

    def holder(self) -> Holder | None:
        """The current holder as recorded (None: nobody)."""
        with self._db.read() as conn:
            return _holder(conn)

    def acquire(self) -> None:
        """Take the lock, or take it over from a dead holder; LedgerBusyError if it is alive."""
        now = utc_now()
        with self._db.transaction() as conn:
            current = _holder(conn)
            last_token = _last_token(conn)
            if current is not None and not self._mine(current):
                if not self._dead(current):
                    raise LedgerBusyError(
                        f"the ledger {self._db.path} is in use by {current.describe()}: stop "
                        "it first, or point [ledger] path elsewhere (lots, tax summary, "
                        "report and alerts tail work meanwhile)"
                    )
                log.warning(
                    "ledger writer lock taken over from a dead holder",
                    extra={
                        "ledger": self._db.path,
                        "holder_host": current.host,
                        "holder_pid": current.pid,
                        "holder_role": current.role,
                        "holder_since": current.since,
                        "holder_silent_s": round(current.silent_s(), 1),
                    },
                )
            token = last_token + 1
            conn.execute(
                "INSERT INTO writer_lock "
                "(name, host, pid, role, since, heartbeat_at, lease_s, token) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "host = excluded.host, pid = excluded.pid, role = excluded.role, "
                "since = excluded.since, heartbeat_at = excluded.heartbeat_at, "
                "lease_s = excluded.lease_s, token = excluded.token",
                (LOCK_NAME, self.host, self.pid, self.role, now, now, self.lease_s, token),
            )
        self.token = token
        self._renewed = time.monotonic()
        log.debug(
            "ledger writer lock taken",
            extra={"ledger": self._db.path, "role": self.role, "token": token},
        )

    def renew(self) -> None:
        """Refresh the heartbeat; LedgerLockLost if the row is no longer ours."""
        if self.token is None:
            raise LedgerLockLost(f"the ledger {self._db.path}: the writer lock is not held")
        with self._db.transaction() as conn:
            updated = conn.execute(
                "UPDATE writer_lock SET heartbeat_at = ? WHERE name = ? AND token = ? "
                "AND host = ? AND pid = ?",
                (utc_now(), LOCK_NAME, self.token, self.host, self.pid),
            ).rowcount
            current = None if updated else _holder(conn)
        self._renewed = time.monotonic()
        if not updated:
            self.token = None
            who = current.describe() if current is not None else "nobody (it was released)"
            raise LedgerLockLost(
                f"the ledger {self._db.path}: the writer lock was taken over by {who} "
                f"while this process held it (silent past its {self.lease_s:g}s lease?): "
                "stopping rather than write beside it"
            )

    def renew_due(self) -> None:
        """`renew` when a third of the lease has passed since the last renewal (for loops
        that do not yield to the event loop, such as a replay); cheap otherwise."""
        if time.monotonic() - self._renewed >= self.lease_s / 3:
            self.renew()

    async def hold(self) -> None:
        """Renew every lease/3 until cancelled; raises LedgerLockLost when lost.

        A renewal that fails on a busy or failing database is retried at the next beat:
        only the lease running out lets another process take over.
        """
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                self.renew()
            except sqlite3.Error as exc:
                log.warning(
                    "ledger writer lock: heartbeat failed, retrying",
                    extra={"ledger": self._db.path, "error": str(exc)},
                )

    def release(self) -> None:
        """Give the lock up (only if still ours; the row stays, free, keeping its token so
        tokens only ever grow); never raises (a stop must go on)."""
        if self.token is None:
            return
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "UPDATE writer_lock SET host = '', pid = 0, role = '', heartbeat_at = ? "
                    "WHERE name = ? AND token = ? AND host = ? AND pid = ?",
                    (utc_now(), LOCK_NAME, self.token, self.host, self.pid),
                )
        except (sqlite3.Error, LedgerError) as exc:  # it expires with its lease
            log.warning(
                "ledger writer lock: release failed; it expires with its lease",
                extra={"ledger": self._db.path, "error": str(exc)},
            )
        self.token = None

    def _mine(self, holder: Holder) -> bool:
        return holder.host == self.host and holder.pid == self.pid

    def _dead(self, holder: Holder) -> bool:
        """Gone, or silent past its lease. On this host the pid decides: gone (a crash, a
        kill -9) is dead at once; alive is alive (a loop stalled by long work is not taken
        over) unless silent for SAME_HOST_LEASES leases (its pid reused by another program)."""
        silent = holder.silent_s()
        if holder.host == self.host:
            if not pid_alive(holder.pid):
                return True
            return silent > holder.lease_s * SAME_HOST_LEASES
        return silent > holder.lease_s


def _holder(conn: sqlite3.Connection) -> Holder | None:
    """The holder, or None when the lock is free (no row yet, or released: pid 0)."""
    row = conn.execute(
        "SELECT host, pid, role, since, heartbeat_at, lease_s, token FROM writer_lock "
        "WHERE name = ? AND pid != 0",
        (LOCK_NAME,),
    ).fetchone()
    if row is None:
        return None
    host, pid, role, since, beat, lease, token = row
    return Holder(host, int(pid), role, since, beat, float(lease), int(token))


def _last_token(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT token FROM writer_lock WHERE name = ?", (LOCK_NAME,)).fetchone()
    return 0 if row is None else int(row[0])
