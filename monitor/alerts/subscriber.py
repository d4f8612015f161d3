"""One websocket subscriber's state: its filter, its bounded outbox, replay-then-live.

While a subscriber catches up from the ledger (`since=`), live alerts are held in
`pending` rather than sent; `go_live` then queues them after the replay, skipping any
the replay already carried. Fan-out (`offer`) never waits: when the outbox or the pending
list is full the subscriber is marked to be cut off, so one client that does not read
costs a bounded amount of memory and never slows the others.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from monitor.alerts.filter import AlertFilter
from monitor.alerts.schema import Alert

SEEN_MIN = 10_000


def alert_frame(encoded: bytes) -> bytes:
    """The server message carrying one alert: `{"type":"alert","alert":<hm.alert/1>}`."""
    return b'{"type":"alert","alert":' + encoded + b"}"


class Subscriber:
    """Filter, outbox and duplicate guard of one connection."""

    def __init__(
        self, holder: str, alert_filter: AlertFilter, queue_size: int, *, replaying: bool
    ) -> None:
        self.holder = holder
        self.filter = alert_filter
        self.queue_size = queue_size
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.pending: list[tuple[str, bytes]] | None = [] if replaying else None
        self.cut = asyncio.Event()
        self.cut_reason = ""
        self.last_alert_id = ""
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_cap = max(SEEN_MIN, 4 * queue_size)

    def offer(self, alert: Alert, frame: bytes) -> None:
        """Take a live alert from fan-out without waiting (filtered, deduplicated)."""
        if self.cut.is_set() or not self.filter.matches(alert):
            return
        if self.pending is not None:
            if len(self.pending) >= self.queue_size:
                self.cut_off(f"fell behind during replay ({self.queue_size} live alerts held)")
                return
            self.pending.append((alert.alert_id, frame))
            return
        self._enqueue(alert.alert_id, frame)

    def take_replayed(self, alert_id: str) -> bool:
        """Whether a replayed alert is new to this connection (and remember it)."""
        if alert_id in self._seen:
            return False
        self._remember(alert_id)
        return True

    def go_live(self, marker: bytes) -> None:
        """End of replay: queue `marker`, then the live alerts held meanwhile, minus repeats."""
        held = self.pending or []
        self.pending = None
        self._put(marker)
        for alert_id, frame in held:
            self._enqueue(alert_id, frame)

    def cut_off(self, reason: str) -> None:
        if not self.cut.is_set():
            self.cut_reason = reason
            self.cut.set()

    def _enqueue(self, alert_id: str, frame: bytes) -> None:
        if alert_id in self._seen:
            return
        if self._put(frame):
            self._remember(alert_id)

    def _put(self, frame: bytes) -> bool:
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.cut_off(f"slow consumer: {self.queue_size} messages not read")
            return False
        return True

    def _remember(self, alert_id: str) -> None:
        self._seen[alert_id] = None
        self.last_alert_id = alert_id
        if len(self._seen) > self._seen_cap:
            self._seen.popitem(last=False)
