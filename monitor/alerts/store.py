"""What alert delivery needs from durable storage (implemented by `monitor.ledger`).

Websocket subscribers catch up with `alerts_since`; webhooks park undeliverable alerts
in the dead-letter table and `alerts redeliver` takes them back out. Kept as a protocol
so the delivery code is testable against any store and the ledger stays the one owner
of the SQLite schema.
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
    def record_alerts(self, alerts: Sequence[tuple[str, str, bytes]]) -> None:
        """Store (alert_id, emitted_at, body); an alert_id already stored is ignored."""
        ...

    def alerts_since(self, since: str, limit: int = 10_000) -> list[StoredAlert]:
        """Alerts after `since`: an alert_id (strictly after it) or an ISO time (at/after it)."""
        ...

    def add_dead_letter(
        self, subscription: str, alert_id: str, body: bytes, attempts: int, last_error: str
    ) -> None: ...

    def dead_letters(self, subscription: str | None = None) -> list[DeadLetter]: ...

    def remove_dead_letter(self, dead_letter_id: int) -> None: ...
