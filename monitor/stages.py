"""The stages the pipeline runs: ingest (feed -> bus), detect (bus -> detector -> sinks),
the status line, the feed watch and the health check; and `emit`, the one way alerts
reach the sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from monitor import investor, metrics
from monitor.alerts.interface import AlertSink
from monitor.alerts.recording import RecordingSink
from monitor.alerts.schema import Alert, encode_alert
from monitor.detect import Detector
from monitor.health import HealthCheck, Observation
from monitor.ledger import Ledger
from monitor.lot_columns import LotAlertState
from monitor.prices.health import FeedWatch
from monitor.terminal import PLAIN, Palette
from streams.bus.interface import Consumer, Producer
from streams.errors import TickFormatError
from streams.feeds.interface import Feed, FeedState, FeedStatus
from streams.ticks import decode_tick, encode_tick, tick_key

log = logging.getLogger(__name__)

STATUS_EVERY_S = 5.0
STATE_FLUSH_S = 1.0  # lot alert state that changed with no alert (re-arms) is written this often
SINK_LOG_EVERY_S = 10.0  # a failing sink is logged once per this long, with a count


class SinkFailures:
    """A failing sink's error, logged once per interval per sink with how many failures
    were held back: a sink that fails every batch (stdout whose reader went away, as in
    `demo | head`) costs one log line per interval, not one per alert batch."""

    def __init__(
        self, interval_s: float = SINK_LOG_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._due: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def failed(self, sink: str, exc: BaseException) -> None:
        now = self._clock()
        if now < self._due.get(sink, float("-inf")):
            self._held[sink] = self._held.get(sink, 0) + 1
            return
        self._due[sink] = now + self.interval_s
        held = self._held.pop(sink, 0)
        extra: dict[str, object] = {"sink": sink}
        if held:
            extra |= {"repeated": held, "repeated_within_s": self.interval_s}
        log.error("alert sink failed: %s", exc, extra=extra)


SINK_FAILURES = SinkFailures()


async def emit(
    sinks: Sequence[AlertSink],
    alerts: Sequence[Alert],
    recv_ns: int,
    recent: deque[Alert] | None = None,
    lot_state: LotAlertState | None = None,
) -> int:
    """Send alerts to every sink; one failing sink is counted and logged, others go on.

    The ledger's recorder (first in `sinks` when there is a ledger, see build_sinks) is a
    gate: the sinks after it get only the alerts it had not recorded before, so an alert
    detected again from re-processed ticks goes to no one twice. It writes `lot_state` (the
    lots whose alert state changed up to these alerts) in the same transaction. If
    recording fails, the whole batch goes on (a possible repeat beats a loss). Returns how
    many alerts went on; they are also appended to `recent` (the last alerts /status shows).
    """
    if not alerts:
        return 0
    batch = [(alert, encode_alert(alert)) for alert in alerts]
    for sink in sinks:
        try:
            if isinstance(sink, RecordingSink):
                batch = sink.record(batch, lot_state)
                if not batch:
                    return 0
            else:
                await sink.send(batch)
        except Exception as exc:  # a sink is a plug-in: its failure must not stop detection
            metrics.SINK_ERRORS.labels(sink.name).inc(len(batch))
            SINK_FAILURES.failed(sink.name, exc)
    latency = max(0.0, (time.time_ns() - recv_ns) / 1e9)
    for alert, _ in batch:
        metrics.TICK_TO_ALERT.observe(latency)
        if recent is not None:
            recent.append(alert)
    return len(batch)


RECENT_ALERTS = 10  # the last alerts /status shows


def save_state(sinks: Sequence[AlertSink], detector: Detector) -> None:
    """Write the lot alert state that changed since the last alerts (re-arms, crossings
    inside the cooldown), and that of lots whose alerts' write failed, through the ledger's
    recorder; nothing without a ledger. A failed write loses nothing: the lots stay marked
    and go with the next write."""
    recorder = next((s for s in sinks if isinstance(s, RecordingSink)), None)
    if recorder is None:
        return
    book = detector.book
    if recorder.unwritten:
        book.unsaved(book.rows_of(recorder.unwritten))
        recorder.unwritten = []
    if not book.has_unsaved:
        return
    state = book.take_state()
    try:
        recorder.save_state(state)
    except Exception as exc:  # the ledger failing must not stop detection
        metrics.SINK_ERRORS.labels(recorder.name).inc()
        book.unsaved(book.rows_of(state.lot_ids))
        log.error("lot alert state not saved: %s", exc, extra={"lots": len(state)})


@dataclass
class Counters:
    """What the status line and /status show."""

    ticks_in: int = 0
    ticks_detected: int = 0
    alerts: int = 0
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    recent: deque[Alert] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))


async def ingest_stage(feed: Feed, producer: Producer, topic: str, counters: Counters) -> None:
    """Feed -> bus: every batch of ticks published keyed by base asset."""
    async for batch in feed.batches():
        await producer.publish_many(topic, [(tick_key(t), encode_tick(t)) for t in batch])
        counters.ticks_in += len(batch)


async def detect_stage(
    consumer: Consumer,
    detector: Detector,
    sinks: Sequence[AlertSink],
    counters: Counters,
    *,
    max_records: int,
) -> None:
    """Bus -> detection -> sinks; offsets are committed after the alerts are out. Lot alert
    state goes to the ledger with the alerts, and what changed without an alert at most
    every STATE_FLUSH_S."""
    flush_at = time.monotonic() + STATE_FLUSH_S
    while True:
        records = await consumer.get_batch(max_records, 0.5)
        if time.monotonic() >= flush_at:
            save_state(sinks, detector)
            flush_at = time.monotonic() + STATE_FLUSH_S
        if not records:
            continue
        started = time.perf_counter()
        by_venue: dict[str, int] = {}  # counted per batch: labels() per tick costs ~1 us
        try:
            for record in records:
                try:
                    tick = decode_tick(record.value)
                except TickFormatError as exc:
                    metrics.TICKS_REJECTED.labels("undecodable").inc()
                    log.warning(
                        "undecodable tick skipped: %s",
                        exc,
                        extra={
                            "topic": record.topic,
                            "partition": record.partition,
                            "offset": record.offset,
                        },
                    )
                    continue
                by_venue[tick.venue] = by_venue.get(tick.venue, 0) + 1
                alerts = detector.on_tick(tick)
                if alerts:
                    state = detector.take_state()
                    counters.alerts += await emit(
                        sinks, alerts, tick.recv_ns, counters.recent, state
                    )
        finally:
            for venue, count in by_venue.items():
                metrics.TICKS_PROCESSED.labels(venue).inc(count)
        counters.ticks_detected += len(records)
        metrics.DETECT_BATCH.observe(time.perf_counter() - started)
        await consumer.commit()


def troubles(
    watch: FeedWatch | None,
    *,
    kill_switch: str = "",
    held: Sequence[str] = (),
    feeds: Sequence[FeedStatus] = (),
) -> list[str]:
    """What is wrong right now, in words a person acts on (empty when all is well):
    venues that failed to connect and are retrying (from the first failure, not only
    once they turn stale), stale venues, assets without a fresh price, held groups, the
    kill switch."""
    out = [
        f"{st.venue} not connected ({(st.last_error or st.state.value)[:80]}; retrying)"
        for st in feeds
        if st.reconnects and st.state in (FeedState.BACKOFF, FeedState.CONNECTING)
    ]
    if watch is not None:
        for venue in watch.stale:
            age = watch.venues[venue].age_s
            out.append(f"{venue} stale (no tick for {age:.0f} s)")
        if watch.excluded:
            names = ", ".join(watch.excluded[:5]) + (", ..." if len(watch.excluded) > 5 else "")
            count = len(watch.excluded)
            out.append(f"no fresh price for {count} asset{'s' if count > 1 else ''} ({names})")
    out.extend(f"held: {group}" for group in held)
    if kill_switch:
        out.append(f"{kill_switch}: no orders are sent")
    return out


def status_line(
    counters: Counters,
    detector: Detector | None,
    feeds: Sequence[Feed],
    window: tuple[float, int],
    watch: FeedWatch | None = None,
    problems: Sequence[str] = (),
) -> str:
    """`ticks 1234 (246/s) | lots 342 | alerts 12 | binance subscribed ... | ok`; the last
    part is `ok`, or `attention: ...` naming what is wrong (`troubles`)."""
    now = time.monotonic()
    then, ticks_then = window
    # The rate of the half this process runs: detected when detecting, else ingested.
    seen = counters.ticks_detected if detector is not None else counters.ticks_in
    rate = (seen - ticks_then) / max(now - then, 1e-9)
    parts = [f"ticks in {counters.ticks_in} detected {counters.ticks_detected} ({rate:,.0f}/s)"]
    if detector is not None:
        parts.append(f"lots {detector.book.lot_count}")
    parts.append(f"alerts {counters.alerts}")
    if watch is not None:  # per venue: state, age, reconnects, gaps, drops, STALE
        parts.extend(watch.describe([f.status for f in feeds]))
    else:
        for feed in feeds:
            st = feed.status
            dropped = sum(st.dropped.values())
            age = f"{(time.time_ns() - st.last_tick_ns) / 1e9:.1f}s" if st.last_tick_ns else "-"
            parts.append(
                f"{st.venue} {st.state.value} age {age} reconnects {st.reconnects} "
                f"dropped {dropped}"
            )
    parts.append(f"attention: {'; '.join(problems)}" if problems else "ok")
    return " | ".join(parts)


async def status_stage(
    counters: Counters,
    detector: Detector | None,
    feeds: Sequence[Feed],
    out: TextIO,
    watch: FeedWatch | None = None,
    problems: Callable[[], list[str]] | None = None,
    palette: Palette = PLAIN,
) -> None:
    """A one-line status on stderr every few seconds; what is wrong in words at its end
    (in colour with a palette that is on)."""
    window = (time.monotonic(), 0)
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        wrong = problems() if problems is not None else []
        line = status_line(counters, detector, feeds, window, watch, wrong)
        if palette.on:
            head, sep, tail = line.rpartition(" | ")
            line = head + sep + palette.paint(tail, "bold", "red" if wrong else "green")
        out.write(f"{palette.paint('[status]', 'dim')} {line}\n")
        out.flush()
        seen = counters.ticks_detected if detector is not None else counters.ticks_in
        window = (time.monotonic(), seen)


async def figures_stage(detector: Detector, ledger: Ledger | None) -> None:
    """The investor's gauges (monitor.investor), every `investor.EVERY_S` on the loop:
    trigger distances from the book; with a ledger, this tax year's harvests, tax saved
    and the do-not-buy list. A failing ledger read is logged (with a count) and retried."""
    failures = 0
    while True:
        investor.refresh_triggers(detector.book, dict(detector.exposure.prices))
        if ledger is not None:
            try:
                # A year of disposals is more than a short transaction: off the loop.
                today = datetime.now(UTC).date()
                await asyncio.to_thread(investor.refresh_year, ledger, detector.book.tax, today)
                failures = 0
            except Exception as exc:  # a gauge must never stop detection
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning(
                        "investor figures not refreshed: %s", exc, extra={"failures": failures}
                    )
        await asyncio.sleep(investor.EVERY_S)


async def watch_stage(watch: FeedWatch, feeds: Sequence[Feed], every_s: float = 1.0) -> None:
    """Feed health on the wall clock: stale venues and unpriced assets, logged on change."""
    while True:
        watch.check(time.time_ns(), {f.status.venue: f.status.last_tick_ns for f in feeds})
        await asyncio.sleep(every_s)


async def health_stage(
    check: HealthCheck, observe: Callable[[], Awaitable[Observation]], every_s: float = 1.0
) -> None:
    """Judge the pipeline's health every `every_s` (what /healthz serves); asking the
    consumer for its progress also keeps `hm_bus_consumer_lag_records` current."""
    while True:
        check.judge(await observe())
        await asyncio.sleep(every_s)
