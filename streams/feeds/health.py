"""A feed's health: the FeedStatus it shows and the Prometheus metrics behind it.

Every feed (native websocket or ccxt) reports through one `FeedHealth`, so the status
line and /metrics mean the same thing whatever the venue. Tick counters are pushed to
Prometheus in bulk (`flush()`, every METRICS_EVERY ticks or once a second) to keep the
per-message cost to a few attribute writes.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence

from prometheus_client import Gauge

from streams import metrics
from streams.feeds.interface import FeedState, FeedStatus
from streams.ticks import Tick

__all__ = ["METRICS_EVERY", "FeedHealth"]

log = logging.getLogger(__name__)

METRICS_EVERY = 256  # ticks between pushes of the tick metrics (also once a second)
SAMPLES_PER_REASON = 5
# Known shapes with nothing to tell, not malformed: counted apart from drops, logged once.
SKIP_REASONS = frozenset({"empty_ticker", "no_last_price"})
SAMPLE_BYTES = 512


class FeedHealth:
    """Owns a feed's `FeedStatus` and its metric children (labels: venue, symbol, reason)."""

    def __init__(self, venue: str, *, kind: str = "native", exchange_id: str = "") -> None:
        self.venue = venue
        self.status = FeedStatus(venue=venue, kind=kind, exchange_id=exchange_id)
        self._samples: dict[str, deque[bytes]] = {}
        self._reported = 0  # status.ticks already added to the FEED_TICKS counter
        self._reported_symbols: dict[str, int] = {}
        self._m_symbol_last: dict[str, Gauge] = {}  # symbol -> its labelled gauge child
        self._m_ticks = metrics.FEED_TICKS.labels(venue)
        self._m_last = metrics.FEED_LAST_TICK.labels(venue)
        self._m_connected = metrics.FEED_CONNECTED.labels(venue)
        self._m_since = metrics.FEED_CONNECTED_SINCE.labels(venue)
        self._m_reconnects = metrics.FEED_RECONNECTS.labels(venue)
        self._m_gaps = metrics.FEED_GAPS.labels(venue)
        self._m_missed = metrics.FEED_MISSED_MESSAGES.labels(venue)
        self._m_stalls = metrics.FEED_STALLS.labels(venue)
        self._m_rollovers = metrics.FEED_ROLLOVERS.labels(venue)

    @property
    def drop_samples(self) -> dict[str, list[bytes]]:
        """The last few raw messages dropped, per reason (truncated), for debugging."""
        return {reason: list(samples) for reason, samples in self._samples.items()}

    # Per message ---------------------------------------------------------------------------

    def record(self, ticks: Sequence[Tick]) -> None:
        """Count ticks about to be handed to the consumer."""
        status = self.status
        status.ticks += len(ticks)
        newest = ticks[-1]
        if len(ticks) == 1:  # the usual case: one trade per message
            status.symbol_last_tick_ns[newest.symbol] = newest.recv_ns
        else:
            last = status.symbol_last_tick_ns
            for tick in ticks:
                last[tick.symbol] = tick.recv_ns
        status.last_tick_ns = newest.recv_ns
        if status.ticks - self._reported >= METRICS_EVERY:
            self.flush()

    def drop(self, reason: str, raw: bytes | str) -> None:
        """Count one dropped message, keep a sample; logs on the 1st, 2nd, 4th, 8th...

        A reason of `SKIP_REASONS` is a skip instead (see `skip`).
        """
        if reason in SKIP_REASONS:
            self.skip(reason)
            return
        dropped = self.status.dropped
        count = dropped[reason] = dropped.get(reason, 0) + 1
        metrics.FEED_DROPPED.labels(self.venue, reason).inc()
        data = raw.encode() if isinstance(raw, str) else raw
        sample = bytes(data[:SAMPLE_BYTES])
        self._samples.setdefault(reason, deque(maxlen=SAMPLES_PER_REASON)).append(sample)
        if count & (count - 1) == 0:
            log.warning(
                "dropped a %s message (%s)",
                self.venue,
                reason,
                extra={"venue": self.venue, "reason": reason, "count": count, "raw": sample},
            )

    def skip(self, reason: str) -> None:
        """Count a message of a known shape with no price in it (not an error); logs once."""
        skipped = self.status.skipped
        count = skipped[reason] = skipped.get(reason, 0) + 1
        metrics.FEED_SKIPPED.labels(self.venue, reason).inc()
        if count == 1:
            log.info(
                "skipping %s messages without a price (%s)",
                self.venue,
                reason,
                extra={"venue": self.venue, "reason": reason},
            )

    def conflated(self, count: int) -> None:
        """`count` ticks replaced by a newer one of their symbol while the consumer lagged."""
        dropped = self.status.dropped
        total = dropped["conflated"] = dropped.get("conflated", 0) + count
        metrics.FEED_DROPPED.labels(self.venue, "conflated").inc(count)
        if total == count:  # the first time: say so once; the counter tells the rest
            log.warning(
                "%s: the consumer lags; keeping only the newest tick per symbol",
                self.venue,
                extra={"venue": self.venue, "reason": "conflated", "count": total},
            )

    def duplicate(self) -> None:
        """A tick already passed on from the other connection of a rollover."""
        self.status.duplicates += 1

    def gap(self, missed: int) -> None:
        """A jump in the venue's sequence numbers: `missed` messages never arrived."""
        self.status.gaps += 1
        self.status.missed_messages += missed
        self._m_gaps.inc()
        self._m_missed.inc(missed)

    # Per connection ------------------------------------------------------------------------

    def state(self, state: FeedState) -> None:
        """Move to `state` (SUBSCRIBED is set by `connected()`)."""
        self.status.state = state
        if state is not FeedState.SUBSCRIBED:
            self._m_connected.set(0)
            self._m_since.set(0)

    def connected(self) -> None:
        """The current connection is subscribed."""
        self.status.state = FeedState.SUBSCRIBED
        self.status.connected_since_ns = time.time_ns()
        self._m_connected.set(1)
        self._m_since.set(self.status.connected_since_ns / 1e9)

    def reconnect(self) -> None:
        """A new connection after a lost one."""
        self.status.reconnects += 1
        self._m_reconnects.inc()

    def stall(self) -> None:
        """A connection was given up as silent."""
        self.status.stalls += 1
        self._m_stalls.inc()

    def rollover(self) -> None:
        """A planned replacement connection took over."""
        self.status.rollovers += 1
        self._m_rollovers.inc()

    def error(self, message: str) -> None:
        """Remember the last error for the status line."""
        self.status.last_error = message

    def flush(self) -> None:
        """Push the tick counters and last-tick gauges to Prometheus."""
        status = self.status
        if status.ticks == self._reported:
            return
        self._m_ticks.inc(status.ticks - self._reported)
        self._m_last.set(status.last_tick_ns / 1e9)
        self._reported = status.ticks
        seen, children = self._reported_symbols, self._m_symbol_last
        for symbol, ns in status.symbol_last_tick_ns.items():
            if seen.get(symbol) != ns:
                seen[symbol] = ns
                child = children.get(symbol)
                if child is None:  # labels() costs a lock and a tuple key: once per symbol
                    child = children[symbol] = metrics.FEED_SYMBOL_LAST_TICK.labels(
                        self.venue, symbol
                    )
                child.set(ns / 1e9)

    def stopped(self) -> None:
        """The feed is stopped: final flush, gauges to zero."""
        self.flush()
        self.state(FeedState.STOPPED)
