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

from prometheus_client import Counter

from monitor.alerts.schema import Alert
from monitor.alerts.store import AlertStore

REPEATED = Counter(
    "hm_alerts_repeated_total",
    "Alerts detected again (ticks processed again after a restart) that the ledger already "
    "had: not sent to any sink a second time.",
)


class RecordingSink:
    """Writes each batch to the store in one short transaction; keeps the new alerts."""

    def __init__(self, store: AlertStore) -> None:
        self.name = "ledger"
        self._store = store

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def record(self, alerts: Sequence[tuple[Alert, bytes]]) -> list[tuple[Alert, bytes]]:
        """Record the batch; return the part of it that was not in the store before."""
        fresh = set(
            self._store.record_alerts([(a.alert_id, a.emitted_at, body) for a, body in alerts])
        )
        kept: list[tuple[Alert, bytes]] = []
        for alert, body in alerts:
            if alert.alert_id in fresh:
                fresh.discard(alert.alert_id)  # the same id twice in one batch: once
                kept.append((alert, body))
        if len(kept) < len(alerts):
            REPEATED.inc(len(alerts) - len(kept))
        return kept

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        """The AlertSink method: record (callers that fan out use `record` instead)."""
        self.record(alerts)
