"""The first sink: every alert is recorded in the AlertStore (the ledger) before fan-out.

Placed ahead of every other sink, so a websocket subscriber's `since=` replay and the
webhook dead letters always find an alert that any subscriber was sent, also after a
restart. An id already recorded is ignored by the store, so a replayed tick is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.alerts.schema import Alert
from monitor.alerts.store import AlertStore


class RecordingSink:
    """Writes each batch to the store in one short transaction."""

    def __init__(self, store: AlertStore) -> None:
        self.name = "ledger"
        self._store = store

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        self._store.record_alerts([(a.alert_id, a.emitted_at, body) for a, body in alerts])
