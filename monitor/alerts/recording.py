"""The first sink: every alert is recorded in the AlertStore (the ledger) before fan-out.

Placed ahead of every other sink, so a websocket subscriber's `since=` replay, the
webhook workers (which read their alerts from the ledger) and the dead letters always
find an alert that any subscriber was sent, also after a restart.

It is also the gate of the fan-out: `record` returns the alerts the store did not know
yet, and `emit` (monitor/app.py) hands only those to the sinks after it. An alert detected
again, because ticks whose Kafka offsets were not committed are processed again after a
restart, has the same alert_id: it is counted here and sent to no one a second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from prometheus_client import Counter

from monitor.alerts.schema import Alert
from monitor.alerts.store import AlertStore
from monitor.lot_columns import LotAlertState

REPEATED = Counter(
    "hm_alerts_repeated_total",
    "Alerts detected again (ticks processed again after a restart) that the ledger already "
    "had: not sent to any sink a second time.",
)


@runtime_checkable
class LotStateStore(Protocol):
    """A store that also keeps each lot's alert state (the ledger, monitor/ledger/alert_state.py):
    written in the same transaction as the alerts it goes with, so after a restart no lot
    is alerted again for a crossing it was already alerted for."""

    def record_alerts(
        self, alerts: Sequence[tuple[str, str, bytes]], lot_state: LotAlertState | None = None
    ) -> list[str]: ...

    def save_lot_state(self, lot_state: LotAlertState) -> None: ...


class RecordingSink:
    """Writes each batch to the store in one short transaction; keeps the new alerts."""

    def __init__(self, store: AlertStore) -> None:
        self.name = "ledger"
        self._store = store
        self._lot_states = store if isinstance(store, LotStateStore) else None
        self.unwritten: list[str] = []  # lots whose state went with a batch that failed

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def record(
        self, alerts: Sequence[tuple[Alert, bytes]], lot_state: LotAlertState | None = None
    ) -> list[tuple[Alert, bytes]]:
        """Record the batch, and `lot_state` with it when the store keeps lot state; return
        the part of the batch that was not in the store before. If the write fails, the
        lots of `lot_state` are kept in `unwritten` (stages.save_state writes them later)."""
        rows = [(a.alert_id, a.emitted_at, body) for a, body in alerts]
        if self._lot_states is not None and lot_state is not None:
            try:
                fresh = set(self._lot_states.record_alerts(rows, lot_state))
            except Exception:
                self.unwritten.extend(lot_state.lot_ids)
                raise
        else:
            fresh = set(self._store.record_alerts(rows))
        kept: list[tuple[Alert, bytes]] = []
        for alert, body in alerts:
            if alert.alert_id in fresh:
                fresh.discard(alert.alert_id)  # the same id twice in one batch: once
                kept.append((alert, body))
        if len(kept) < len(alerts):
            REPEATED.inc(len(alerts) - len(kept))
        return kept

    def save_state(self, lot_state: LotAlertState) -> None:
        """Write lot alert state that changed with no alert (re-arms), when the store keeps it."""
        if self._lot_states is not None and len(lot_state):
            self._lot_states.save_lot_state(lot_state)

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        """The AlertSink method: record (callers that fan out use `record` instead)."""
        self.record(alerts)
