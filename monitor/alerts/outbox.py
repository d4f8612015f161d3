"""Webhook delivery from the ledger: the alerts table is the outbox, one cursor per subscription.

Every alert is recorded in the ledger before fan-out (monitor/alerts/recording.py). Each
`[[webhooks]]` subscription has one worker that reads the alerts after its cursor (the
ledger cursor `webhook:<name>`), in seq order and in pages of at most `queue_size`, and
POSTs those its filter takes (monitor/alerts/webhook.py `deliver`). The cursor moves past
an alert once it is delivered or dead-lettered, never before. So:

- a stop, a crash or a kill resumes after the last alert handled: an alert recorded but
  not yet delivered is delivered at the next start (before newer ones), not dead-lettered
  and not lost, also when the Kafka offsets of its tick were already committed;
- no alert is queued twice: there is one reader per subscription following one ever
  increasing seq, so "catch-up" and "live" are the same loop;
- `send` only wakes the worker: a slow or dead receiver delays only its own subscription,
  and its backlog waits in the ledger (`hm_webhook_queue_depth`), not in memory.

The one repeat left: a crash after the receiver's 2xx and before the cursor write sends
that alert again at the next start (receivers dedupe by `webhook-id`). A subscription
name the ledger has no cursor for (new, or renamed) starts after the newest recorded
alert: it is not sent history. One process per ledger delivers a given subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime

import aiohttp
import msgspec

from monitor.alerts.schema import Alert, decode_alert
from monitor.alerts.store import AlertStore, StoredAlert
from monitor.alerts.webhook import (
    DEAD_LETTERED,
    DELIVERIES,
    DELIVERY_SECONDS,
    QUEUE_DEPTH,
    Delivery,
    WebhookTarget,
    deliver,
    redact_url,
)

log = logging.getLogger(__name__)

CURSOR_PREFIX = "webhook:"
MAX_ERROR_PAUSE_S = 30.0


def cursor_name(subscription: str) -> str:
    """The ledger cursor of a webhook subscription."""
    return f"{CURSOR_PREFIX}{subscription}"


class WebhookSink:
    """One subscription: a worker that follows the ledger from the subscription's cursor.

    The alerts handed to `send` must already be in `store` (the recorder runs first).
    """

    def __init__(
        self,
        target: WebhookTarget,
        store: AlertStore,
        *,
        session: aiohttp.ClientSession | None = None,
        stop_grace_s: float = 5.0,
        error_pause_s: float = 1.0,
    ) -> None:
        self.name = f"webhook:{target.name}"
        self.target = target
        self.cursor = cursor_name(target.name)
        self._store = store
        self._session = session
        self._own_session = session is None
        self._grace = stop_grace_s
        self._error_pause_s = error_pause_s
        self._done = 0  # last seq handled here: delivered, dead-lettered or filtered out
        self._saved = 0  # last seq written to the ledger cursor
        self._latest = 0  # newest seq seen recorded (for the backlog gauge)
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The last alert seq this subscription has handled."""
        return self._done

    @property
    def running(self) -> bool:
        """Started, and its worker is alive."""
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        saved = self._store.cursor(self.cursor)
        self._latest = self._store.last_seq()
        if saved is None:  # new subscription: from now on, no history
            saved = self._latest
            self._store.set_cursor(self.cursor, saved)
        self._done = self._saved = saved
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._worker = asyncio.create_task(self._work(), name=self.name)
        self._worker.add_done_callback(lambda _: self._progress.set())
        self._gauge()
        log.info(
            "webhook subscription started",
            extra={
                "subscription": self.target.name,
                "url": redact_url(self.target.url),
                "format": self.target.format,
                "cursor": saved,
                "backlog": self._latest - saved,
            },
        )

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        """Wake the worker; never waits (the alerts are read back from the ledger)."""
        if alerts:
            self._latest = self._store.last_seq()
            self._gauge()
            self._wake.set()

    async def drain(self) -> None:
        """Wait until every alert recorded so far is delivered, dead-lettered or filtered
        out (tests, shutdown). Raises RuntimeError if the worker is not running."""
        target = self._store.last_seq()
        self._wake.set()
        while self._done < target:
            if self._worker is None or self._worker.done():
                raise RuntimeError(f"{self.name}: the delivery worker is not running")
            self._progress.clear()
            await self._progress.wait()

    async def stop(self) -> None:
        """Give the backlog `stop_grace_s`; what is left stays in the ledger for next time.

        An alert being posted when the grace ends is cancelled and stays after the
        cursor: the next start sends it again (it may have arrived: at least once).
        """
        if self._worker is not None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self.drain(), self._grace)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
            try:
                self._save()
            except Exception:  # nothing lost: the ledger cursor is only further behind
                log.exception("could not save the webhook cursor", extra=self._fields())
            if self._done < self._latest:
                log.info(
                    "webhook subscription stopped with a backlog, kept for the next start",
                    extra={**self._fields(), "backlog": self._latest - self._done},
                )
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        failures = 0
        while True:
            self._wake.clear()  # before reading: a send during the read wakes us again
            try:
                page = self._store.alerts_after_seq(self._done, self.target.queue_size)
                self._latest = self._store.last_seq()
                self._gauge()
                if not page:
                    await self._wake.wait()
                    continue
                for stored in page:
                    await self._handle(stored)
                self._save()
                self._gauge()
                failures = 0
            except Exception:  # the ledger failing: retry from the last alert handled
                failures += 1
                pause = min(MAX_ERROR_PAUSE_S, self._error_pause_s * 2 ** (failures - 1))
                log.exception(
                    "webhook worker: ledger error, retrying",
                    extra={**self._fields(), "retry_in_s": pause},
                )
                await asyncio.sleep(pause)

    async def _handle(self, stored: StoredAlert) -> None:
        """Deliver or dead-letter one alert (if the filter takes it), then move past it."""
        try:
            alert = decode_alert(stored.body)
        except msgspec.DecodeError as exc:
            result = Delivery(False, 0, f"stored alert is not hm.alert/1: {exc}", "error")
        else:
            if not self.target.filter.matches(alert):
                self._advance(stored.seq)  # saved with the next delivery or the page's end
                return
            result = await self._deliver(alert, stored)
        if result.ok:
            DELIVERIES.labels(self.target.name, "delivered").inc()
            DELIVERY_SECONDS.labels(self.target.name).observe(_age_s(stored.emitted_at))
        else:  # raises if the ledger cannot take it: then the cursor stays before it
            self._dead_letter(stored, result)
        self._advance(stored.seq)
        self._save()

    async def _deliver(self, alert: Alert, stored: StoredAlert) -> Delivery:
        assert self._session is not None
        attempts = 0

        def count(attempt: int) -> None:
            nonlocal attempts
            attempts = attempt

        try:
            return await deliver(self._session, self.target, alert, stored.body, on_attempt=count)
        except Exception as exc:  # a bug must cost one alert (dead-lettered), not the worker
            log.exception("webhook delivery failed", extra=self._fields(stored.alert_id))
            return Delivery(False, attempts, f"{type(exc).__name__}: {exc}", "error")

    def _advance(self, seq: int) -> None:
        self._done = seq
        self._progress.set()

    def _save(self) -> None:
        if self._done > self._saved:
            self._store.set_cursor(self.cursor, self._done)
            self._saved = self._done

    def _gauge(self) -> None:
        QUEUE_DEPTH.labels(self.target.name).set(max(0, self._latest - self._done))

    def _dead_letter(self, stored: StoredAlert, result: Delivery) -> None:
        self._store.add_dead_letter(
            self.target.name, stored.alert_id, stored.body, result.attempts, result.error
        )
        DELIVERIES.labels(self.target.name, "dead_lettered").inc()
        DEAD_LETTERED.labels(self.target.name, result.reason).inc()
        log.warning(
            "webhook alert dead-lettered",
            extra={
                **self._fields(stored.alert_id),
                "attempts": result.attempts,
                "reason": result.reason,
                "error": result.error,
            },
        )

    def _fields(self, alert_id: str | None = None) -> dict[str, object]:
        fields: dict[str, object] = {"subscription": self.target.name, "cursor": self._done}
        if alert_id is not None:
            fields["alert_id"] = alert_id
        return fields


def _age_s(emitted_at: str) -> float:
    """Seconds since an alert's emitted_at (0 when it cannot be read)."""
    try:
        when = datetime.fromisoformat(emitted_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - when.timestamp())
