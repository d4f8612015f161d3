"""Webhook delivery from the ledger: the alerts table is the outbox, one cursor per subscription.

Every alert is recorded in the ledger before fan-out (monitor/alerts/recording.py). Each
`[[webhooks]]` subscription has one reader that follows the alerts after its cursor (the
ledger cursor `webhook:<name>`) in seq order, and up to `concurrency` deliveries in flight
(monitor/alerts/webhook.py `deliver`) for the alerts its filter takes. The cursor is a
contiguous watermark: it moves past an alert only once that alert and every alert before
it are delivered, dead-lettered or filtered out. So:

- a stop, a crash or a kill resumes after the watermark: an alert recorded but not yet
  handled is delivered at the next start, not dead-lettered and not lost, also when the
  Kafka offsets of its tick were already committed;
- a slow or failing receiver holds `concurrency` alerts at most; the others go on, and an
  alert older than `max_age_s` is dead-lettered (`expired`) rather than sent late, so no
  alert holds the watermark longer than `max_age_s` plus one attempt;
- `send` only wakes the reader: a slow or dead receiver delays only its own subscription,
  its backlog waits in the ledger (`hm_webhook_queue_depth`, exact: alerts after the
  cursor not yet handled), and at most `queue_size` alerts past the watermark are in memory.

The repeats left: an alert in flight or handled above the watermark when the process dies
is sent again at the next start (receivers dedupe by `webhook-id`), and with
`concurrency > 1` alerts may arrive out of order. A subscription name the ledger has no
cursor for (new, or renamed) starts after the newest recorded alert: it is not sent
history. One process per ledger delivers a given subscription (the ledger's writer lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import msgspec

from monitor.alerts.schema import Alert, decode_alert
from monitor.alerts.store import AlertStore, StoredAlert
from monitor.alerts.webhook import (
    DEAD_LETTERED,
    DELIVERIES,
    DELIVERY_SECONDS,
    IN_FLIGHT,
    QUEUE_DEPTH,
    Delivery,
    RetryWarnings,
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
    """One subscription: a reader that follows the ledger from the subscription's cursor
    and up to `target.concurrency` deliveries in flight.

    The alerts handed to `send` must already be in `store` (the recorder runs first).
    """

    def __init__(
        self,
        target: WebhookTarget,
        store: AlertStore,
        *,
        session: aiohttp.ClientSession | None = None,
        stop_grace_s: float | None = None,
        error_pause_s: float = 1.0,
    ) -> None:
        self.name = f"webhook:{target.name}"
        self.target = target
        self.cursor = cursor_name(target.name)
        self._store = store
        self._session = session
        self._own_session = session is None
        self._grace = target.stop_grace_s if stop_grace_s is None else stop_grace_s
        self._error_pause_s = error_pause_s
        self._done = 0  # the watermark: every seq up to it is handled
        self._saved = 0  # last seq written to the ledger cursor
        self._read = 0  # the highest seq read from the ledger
        self._pending: deque[int] = deque()  # seqs read and above the watermark, in order
        self._finished: set[int] = set()  # of those, the ones handled (out of order)
        self._unread = 0  # alerts recorded after `_read` (for the backlog gauge)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(target.concurrency)
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._warnings = RetryWarnings()

    @property
    def position(self) -> int:
        """The watermark: the last alert seq this subscription has handled, with all before it."""
        return self._done

    @property
    def backlog(self) -> int:
        """Alerts recorded after the cursor and not yet handled (in flight included)."""
        return self._unread + len(self._pending) - len(self._finished)

    @property
    def running(self) -> bool:
        """Started, and its reader is alive."""
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        saved = self._store.cursor(self.cursor)
        if saved is None:  # new subscription: from now on, no history
            saved = self._store.last_seq()
            self._store.set_cursor(self.cursor, saved)
        self._done = self._saved = self._read = saved
        self._unread = self._store.count_after_seq(saved)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._worker = asyncio.create_task(self._work(), name=self.name)
        self._worker.add_done_callback(lambda _: self._progress.set())
        self._gauge()
        if self.target.legacy_headers:
            log.warning(
                "webhook legacy_headers (X-HM-Timestamp, X-HM-Signature) are deprecated and "
                "go away in the next release: verify the webhook-* headers instead",
                extra={"subscription": self.target.name},
            )
        log.info(
            "webhook subscription started",
            extra={
                "subscription": self.target.name,
                "url": redact_url(self.target.url),
                "format": self.target.format,
                "cursor": saved,
                "backlog": self._unread,
                "concurrency": self.target.concurrency,
            },
        )

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        """Wake the reader; never waits (the alerts are read back from the ledger)."""
        if alerts:
            with contextlib.suppress(Exception):  # the gauge only; the reader re-reads
                self._unread = self._store.count_after_seq(self._read)
                self._gauge()
            self._wake.set()

    async def drain(self) -> None:
        """Wait until every alert recorded so far is delivered, dead-lettered or filtered
        out (tests, shutdown). Raises RuntimeError if the reader is not running."""
        target = self._store.last_seq()
        self._wake.set()
        while self._done < target:
            if self._worker is None or self._worker.done():
                raise RuntimeError(f"{self.name}: the delivery worker is not running")
            self._progress.clear()
            await self._progress.wait()

    async def stop(self) -> None:
        """Give the backlog `stop_grace_s`, then cut off what is in flight; bounded.

        What is left stays after the cursor for the next start; an alert being posted when
        the grace ends is cancelled and sent again then (it may have arrived: at least once).
        """
        if self._worker is not None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self.drain(), self._grace)
            self._worker.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(self._worker, *self._tasks, return_exceptions=True)
            self._worker = None
            try:
                self._save()
            except Exception:  # nothing lost: the ledger cursor is only further behind
                log.exception("could not save the webhook cursor", extra=self._fields())
            if self.backlog:
                log.info(
                    "webhook subscription stopped with a backlog, kept for the next start",
                    extra={**self._fields(), "backlog": self.backlog},
                )
            IN_FLIGHT.labels(self.target.name).set(0)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        failures = 0
        while True:
            self._wake.clear()  # before reading: a send during the read wakes us again
            try:
                room = self.target.queue_size - len(self._pending)
                if room <= 0:  # a full window past the watermark: wait for it to move
                    self._progress.clear()
                    await self._progress.wait()
                    continue
                page = self._store.alerts_after_seq(self._read, room)
                if not page:
                    self._unread = 0
                    self._gauge()
                    await self._wake.wait()
                    continue
                self._read = page[-1].seq
                self._pending.extend(stored.seq for stored in page)
                self._unread = self._store.count_after_seq(self._read)
                self._gauge()
                for stored in page:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._handle(stored), name=self.name)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                failures = 0
            except Exception:  # the ledger failing: retry from the last alert read
                failures += 1
                pause = min(MAX_ERROR_PAUSE_S, self._error_pause_s * 2 ** (failures - 1))
                log.exception(
                    "webhook worker: ledger error, retrying",
                    extra={**self._fields(), "retry_in_s": pause},
                )
                await asyncio.sleep(pause)

    async def _handle(self, stored: StoredAlert) -> None:
        """Deliver or dead-letter one alert (if the filter takes it); then mark it handled.

        Holds one concurrency slot. A dead letter the ledger cannot take is retried (the
        alert stays above the watermark meanwhile: a crash then loses nothing).
        """
        IN_FLIGHT.labels(self.target.name).inc()
        try:
            result = await self._attempt(stored)
            while True:
                try:
                    self._record(stored, result)
                    break
                except Exception:
                    log.exception(
                        "webhook worker: could not record the outcome, trying again",
                        extra=self._fields(stored.alert_id),
                    )
                    await asyncio.sleep(self._error_pause_s)
        finally:
            IN_FLIGHT.labels(self.target.name).dec()
            self._slots.release()
        self._finish(stored.seq)

    async def _attempt(self, stored: StoredAlert) -> Delivery | None:
        """The delivery's outcome; None when the filter does not take the alert."""
        try:
            alert = decode_alert(stored.body)
        except msgspec.DecodeError as exc:
            return Delivery(False, 0, f"stored alert is not hm.alert/1: {exc}", "error")
        if not self.target.filter.matches(alert):
            return None
        return await self._deliver(alert, stored)

    def _record(self, stored: StoredAlert, result: Delivery | None) -> None:
        if result is None:
            return
        if result.ok:
            DELIVERIES.labels(self.target.name, "delivered").inc()
            DELIVERY_SECONDS.labels(self.target.name).observe(_age_s(stored.emitted_at))
        else:  # raises if the ledger cannot take it (then it is tried again)
            self._dead_letter(stored, result)

    async def _deliver(self, alert: Alert, stored: StoredAlert) -> Delivery:
        assert self._session is not None
        attempts = 0

        def count(attempt: int) -> None:
            nonlocal attempts
            attempts = attempt

        expires_at = None
        if self.target.max_age_s > 0:
            emitted = _emitted_s(stored.emitted_at)
            expires_at = None if emitted is None else emitted + self.target.max_age_s
        try:
            return await deliver(
                self._session,
                self.target,
                alert,
                stored.body,
                expires_at=expires_at,
                on_attempt=count,
                warnings=self._warnings,
            )
        except Exception as exc:  # a bug must cost one alert (dead-lettered), not the worker
            log.exception("webhook delivery failed", extra=self._fields(stored.alert_id))
            return Delivery(False, attempts, f"{type(exc).__name__}: {exc}", "error")

    def _finish(self, seq: int) -> None:
        """Mark `seq` handled; move the watermark over every handled seq at its head."""
        self._finished.add(seq)
        moved = False
        while self._pending and self._pending[0] in self._finished:
            self._finished.discard(head := self._pending.popleft())
            self._done = head
            moved = True
        if moved:
            try:
                self._save()
            except Exception:  # saved with a later move, or at stop; never ahead of delivery
                log.exception("could not save the webhook cursor", extra=self._fields())
        self._gauge()
        self._progress.set()

    def _save(self) -> None:
        if self._done > self._saved:
            self._store.set_cursor(self.cursor, self._done)
            self._saved = self._done

    def _gauge(self) -> None:
        QUEUE_DEPTH.labels(self.target.name).set(self.backlog)

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


def _emitted_s(emitted_at: str) -> float | None:
    """An alert's emitted_at as Unix time (None when it cannot be read)."""
    try:
        when = datetime.fromisoformat(emitted_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _age_s(emitted_at: str) -> float:
    """Seconds since an alert's emitted_at (0 when it cannot be read)."""
    emitted = _emitted_s(emitted_at)
    return 0.0 if emitted is None else max(0.0, time.time() - emitted)
