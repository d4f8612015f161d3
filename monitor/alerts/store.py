"""What alert delivery needs from durable storage (implemented by `monitor.ledger`).

The alerts table is the outbox: every alert is recorded before fan-out, and
`record_alerts` says which ids were new, so an alert detected again (ticks re-processed
after a restart) is sent to nobody twice. Websocket subscribers catch up with
`alerts_since`; each webhook subscription follows the table with `alerts_after_seq` from
its named cursor (`webhook:<name>`), parks undeliverable alerts in the dead-letter table,
and `alerts redeliver` takes them back out. Kept as a protocol so the delivery code is
testable against any store and the ledger stays the one owner of the SQLite schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as recorded: `seq` is the ledger's monotonically increasing insert order."""

    seq: int
    alert_id: str
    emitted_at: str  # ISO 8601 UTC, as in the alert
    body: bytes  # the exact hm.alert/1 JSON bytes that were emitted


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An alert a subscription could not take after its last retry."""

    id: int
    subscription: str
    alert_id: str
    body: bytes
    attempts: int
    last_error: str
    failed_at: str  # ISO 8601 UTC


class AlertStore(Protocol):
    def record_alerts(self, alerts: Sequence[tuple[str, str, bytes]]) -> list[str]:
        """Store (alert_id, emitted_at, body) in one transaction; an alert_id already stored
        is ignored. Returns the ids newly stored, in the order given."""
        ...

    def alerts_after_seq(self, seq: int, limit: int = 1000) -> list[StoredAlert]:
        """Alerts with a seq above `seq`, in seq order (a reader following the table)."""
        ...

    def count_after_seq(self, seq: int) -> int:
        """How many alerts have a seq above `seq`."""
        ...

    def last_seq(self) -> int:
        """The newest alert's seq (0 when there is none)."""
        ...

    def cursor(self, name: str) -> int | None:
        """The last alert seq reader `name` handled (None: it never ran on this store)."""
        ...

    def set_cursor(self, name: str, seq: int) -> None: ...

    def alerts_since(self, since: str, limit: int = 10_000) -> list[StoredAlert]:
        """Alerts after `since`: an alert_id (strictly after it) or an ISO time (at/after it)."""
        ...

    def add_dead_letter(
        self, subscription: str, alert_id: str, body: bytes, attempts: int, last_error: str
    ) -> None:
        """Park an alert; a second letter for the same (subscription, alert_id) replaces
        the first (an alert retried after a restart is never parked twice)."""
        ...

    def dead_letters(self, subscription: str | None = None) -> list[DeadLetter]: ...

    def remove_dead_letter(self, dead_letter_id: int) -> None: ...
