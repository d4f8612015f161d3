"""The websocket feed engine every native venue runs on: connect, subscribe, read, recover.

One primary connection at a time. A connection that closes, fails or stays silent for
`silence_timeout_s` (no message, no heartbeat, no pong) is replaced after a jittered
backoff, and its session subscribes everything again. A connection older than the
venue's maximum age (Binance closes them at 24 hours) is rolled over instead: the
replacement is opened and subscribed while the old one still delivers, both run side by
side until the old one has caught up with the new (`session.Overlap` passes each trade
on once, for venues whose sessions key trades by id: Binance, Kraken trades), then the
old one is closed. Venues without trade ids (tickers) just overlap for up to
`rollover_overlap_s`, passing both copies: harmless for prices. Malformed messages
are counted by reason with a few raw samples kept (`FeedHealth`), never raised. A bug
(any other exception) stops the feed loudly: `batches()` raises FeedError.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from streams.errors import FeedError
from streams.feeds.backoff import Backoff
from streams.feeds.connection import ControlBudget, FeedConnection
from streams.feeds.health import FeedHealth
from streams.feeds.interface import FeedConfig, FeedState, FeedStatus
from streams.feeds.session import Overlap, SessionEnded, VenueProtocol, VenueSession
from streams.feeds.tickqueue import OVERFLOW_TICKS, Overflow, TickQueue
from streams.ticks import Tick, now_ns

__all__ = ["SocketFeed"]

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (OSError, TimeoutError, WebSocketException, SessionEnded)


class _Connection:
    """One websocket connection of the feed; the `SessionLink` its session reports to."""

    def __init__(self, feed: SocketFeed, serial: int, now: float, max_age_s: float) -> None:
        self._feed = feed
        self.serial = serial
        self.last_rx = now
        self.retire_at = now + max_age_s if max_age_s > 0 else float("inf")
        self.subscribed_event = asyncio.Event()
        self.subscribed_at: float | None = None
        self.replace = asyncio.Event()
        self.ws: FeedConnection | None = None
        self.task: asyncio.Task[str] | None = None
        self.overlap: Overlap | None = None  # set on both connections during a rollover

    def subscribed(self) -> None:
        if self.subscribed_event.is_set():
            return
        self.subscribed_event.set()
        self.subscribed_at = asyncio.get_running_loop().time()
        if self._feed._current is self:
            self._feed._mark_connected(self)

    def gap(self, missed: int) -> None:
        self._feed._health.gap(missed)

    def drop(self, reason: str, raw: bytes) -> None:
        self._feed._health.drop(reason, raw)

    def refused(self, message: str) -> None:
        self._feed._health.error(message)
        log.error("%s", message, extra={"venue": self._feed.config.venue})

    def replace_soon(self, reason: str) -> None:
        log.info(
            "%s: replacing the connection early: %s",
            self._feed.config.venue,
            reason,
            extra={"venue": self._feed.config.venue, "reason": reason},
        )
        self.replace.set()


class SocketFeed:
    """A native venue feed (see the module docstring); implements `Feed`.

    `start()` launches the connection task; iterate `batches()` for lists of Ticks; `stop()`
    cancels everything and ends `batches()`. A full queue never blocks the reader: ticks
    wait in the overflow (conflated past `OVERFLOW_TICKS`), so pings are always answered.
    """

    def __init__(
        self,
        config: FeedConfig,
        protocol: VenueProtocol,
        *,
        default_max_age_s: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._protocol = protocol
        age = config.max_connection_age_s
        self._max_age_s = default_max_age_s if age is None else age
        self._health = FeedHealth(config.venue)
        self._queue = TickQueue(config.venue, config.queue_size)
        self._overflow = Overflow(OVERFLOW_TICKS)
        self._backoff = Backoff.from_config(config, rng)
        self._serials = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._current: _Connection | None = None
        self._live: set[_Connection] = set()

    @property
    def status(self) -> FeedStatus:
        """Live counters and connection state."""
        return self._health.status

    @property
    def drop_samples(self) -> dict[str, list[bytes]]:
        """The last few raw messages dropped, per reason (truncated), for debugging."""
        return self._health.drop_samples

    @property
    def connections_open(self) -> int:
        """Connections open now (2 during a rollover)."""
        return sum(1 for c in self._live if c.ws is not None)

    async def start(self) -> None:
        """Connect and subscribe in the background (returns at once)."""
        if self._task is not None or self._queue.ended:
            raise FeedError(
                f"{self.config.venue} feed: start() called twice; create a new feed instead"
            )
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.config.venue}")

    async def stop(self) -> None:
        """Close the connections, cancel every task, end `batches()`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        self._queue.finish(None)
        self._health.stopped()

    def batches(self) -> AsyncIterator[list[Tick]]:
        """Ticks in arrival order, in batches (whatever arrived since the last one, capped)."""
        return self._queue.batches()

    # Supervision ---------------------------------------------------------------------------

    async def _run(self) -> None:
        flusher = asyncio.create_task(self._flush_forever())
        forwarder = asyncio.create_task(self._overflow.forward(self._queue))
        try:
            await self._supervise()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a network fault: stop loudly, never silently
            log.exception("%s feed crashed", self.config.venue, extra={"venue": self.config.venue})
            self._health.error(repr(exc))
            self._health.state(FeedState.STOPPED)
            self._queue.finish(exc)
        finally:
            flusher.cancel()
            forwarder.cancel()
            await asyncio.gather(flusher, forwarder, return_exceptions=True)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._health.flush()

    async def _supervise(self) -> None:
        try:
            for attempt in itertools.count():
                if self._current is None:
                    if attempt:
                        self._health.reconnect()
                    self._health.state(FeedState.CONNECTING)
                    self._current = self._launch()
                conn = self._current
                if await self._until_retired(conn):
                    await self._back_off(conn)
                    self._current = None
                else:
                    self._current = await self._roll_over(conn)
        finally:
            tasks = {c.task for c in self._live if c.task is not None}
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    def _launch(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = _Connection(self, next(self._serials), loop.time(), self._max_age_s)
        conn.task = asyncio.create_task(self._session(conn), name=f"feed-{self.config.venue}-conn")
        self._live.add(conn)
        conn.task.add_done_callback(lambda _: self._live.discard(conn))
        return conn

    async def _until_retired(self, conn: _Connection) -> bool:
        """Wait until `conn` ends (True) or is due for a rollover while subscribed (False)."""
        assert conn.task is not None
        loop = asyncio.get_running_loop()
        while True:
            due = conn.retire_at
            timeout = None if due == float("inf") else max(0.0, due - loop.time())
            await _first_of(conn.task, conn.replace, within=timeout)
            if conn.task.done():
                return True
            if conn.subscribed_event.is_set():
                return False
            await _first_of(conn.task, conn.subscribed_event)

    async def _back_off(self, conn: _Connection) -> None:
        assert conn.task is not None
        reason = conn.task.result()  # a crash in the session re-raises here: loud
        loop = asyncio.get_running_loop()
        healthy = 0.0 if conn.subscribed_at is None else loop.time() - conn.subscribed_at
        self._backoff.connection_ended(healthy)
        delay = self._backoff.next_delay()
        self._health.flush()
        self._health.state(FeedState.BACKOFF)
        self._health.error(reason)
        host = urlsplit(self._protocol.endpoint).netloc  # a DNS error alone names no host
        log.warning(
            "%s connection to %s ended (%s); reconnecting in %.3fs",
            self.config.venue,
            host,
            reason,
            delay,
            extra={
                "venue": self.config.venue,
                "host": host,
                "reason": reason,
                "delay_s": round(delay, 3),
            },
        )
        await asyncio.sleep(delay)

    async def _roll_over(self, old: _Connection) -> _Connection:
        """Open a replacement for `old`, hand over without losing or doubling a trade."""
        assert old.task is not None
        new = self._launch()
        assert new.task is not None
        overlap = old.overlap = new.overlap = Overlap(old.serial, new.serial)
        venue = self.config.venue
        log.info("%s: rolling the connection over", venue, extra={"venue": venue})
        try:
            handover_s = max(10.0, self.config.silence_timeout_s)
            await _first_of(new.task, old.task, new.subscribed_event, within=handover_s)
            if old.task.done() and not new.task.done() and not new.subscribed_event.is_set():
                # The old one is gone already: the new one is all there is, let it finish.
                await _first_of(new.task, new.subscribed_event, within=handover_s)
            if not old.task.done() and new.subscribed_event.is_set():
                await _first_of(
                    new.task, old.task, overlap.ready, within=self.config.rollover_overlap_s
                )
            if new.task.done() or not new.subscribed_event.is_set():
                return await self._rollover_failed(old, new)
            released = overlap.switch()
            if released:
                self._health.record(released)
                if not (self._overflow.empty and self._queue.try_put(released)):
                    conflated = self._overflow.add(released)  # behind what already waits
                    if conflated:
                        self._health.conflated(conflated)
            self._current = new
            self._mark_connected(new)
            self._health.rollover()
            await self._retire(old)
            return new
        finally:
            old.overlap = new.overlap = None
            self._health.status.duplicates += overlap.duplicates

    async def _rollover_failed(self, old: _Connection, new: _Connection) -> _Connection:
        assert new.task is not None
        if not new.task.done():
            new.task.cancel()
        await asyncio.wait({new.task})
        reason = "cancelled" if new.task.cancelled() else new.task.result()
        delay = self._backoff.next_delay()
        old.retire_at = asyncio.get_running_loop().time() + delay
        old.replace.clear()
        self._health.error(f"rollover failed: {reason}")
        log.warning(
            "%s: the replacement connection failed (%s); retrying in %.3fs",
            self.config.venue,
            reason,
            delay,
            extra={"venue": self.config.venue, "reason": reason},
        )
        return old

    async def _retire(self, conn: _Connection) -> None:
        """Close `conn` cleanly (its last messages are duplicates by now)."""
        assert conn.task is not None
        if conn.ws is not None and not conn.task.done():
            await conn.ws.close(1000, "replaced")
        done, _ = await asyncio.wait({conn.task}, timeout=2.0)
        if not done:
            conn.task.cancel()
            await asyncio.wait({conn.task})

    def _mark_connected(self, conn: _Connection) -> None:
        self._health.connected()
        log.info("%s subscribed", self.config.venue, extra={"venue": self.config.venue})

    # One connection ------------------------------------------------------------------------

    async def _session(self, conn: _Connection) -> str:
        """One connection, from connect to its end; returns why it ended."""
        ended = "closed"
        try:
            protocol = self._protocol
            async with connect(
                protocol.endpoint,
                open_timeout=10,
                close_timeout=2,
                compression=None,
                max_queue=1024,
                max_size=2**20,
                ping_interval=protocol.client_ping_interval_s,
                ping_timeout=protocol.client_ping_interval_s,
                create_connection=FeedConnection,
            ) as ws:
                assert isinstance(ws, FeedConnection)
                ws.control = ControlBudget(protocol.control_limit)
                conn.ws = ws
                conn.last_rx = asyncio.get_running_loop().time()
                session = self._protocol.session(conn)
                async with asyncio.TaskGroup() as group:
                    group.create_task(session.subscribe(ws))
                    group.create_task(session.keepalive(ws))
                    group.create_task(self._watch_silence(ws, conn))
                    group.create_task(self._read(ws, conn, session))
        except* _NETWORK_ERRORS as errors:
            ended = "; ".join(str(e) or type(e).__name__ for e in errors.exceptions)
            if any(isinstance(e, SessionEnded) and e.stall for e in errors.exceptions):
                self._health.error(ended)  # with the count, so status never shows one alone
                self._health.stall()
        finally:
            conn.ws = None
        return ended

    async def _watch_silence(self, ws: FeedConnection, conn: _Connection) -> None:
        """End the connection when no frame at all (data, heartbeat, ping, pong) arrives in time.

        Any frame counts: Binance proves a quiet connection alive only by its ping frames.
        """
        loop = asyncio.get_running_loop()
        limit = self.config.silence_timeout_s
        queue = self._queue
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = loop.time()
            if queue.blocked:
                conn.last_rx = now
                continue
            quiet = now - max(conn.last_rx, ws.last_frame_at, queue.unblocked_at)
            if quiet > limit:
                raise SessionEnded(f"silent for {quiet:.1f}s (limit {limit}s)", stall=True)

    async def _read(self, ws: FeedConnection, conn: _Connection, session: VenueSession) -> None:
        """Read every message as it comes, even while the consumer is slow.

        Reading never waits on the consumer: a websocket that is not read stops reading
        its socket, and then the venue's pings go unanswered and it hangs up (Binance
        after a minute). Ticks the queue has no room for wait in the overflow, which
        keeps only the newest tick per symbol once it is full (counted as `conflated`).
        """
        loop_time = asyncio.get_running_loop().time
        health, handle, overflow = self._health, session.handle, self._overflow
        try_put = self._queue.try_put
        while True:
            raw = await ws.recv(decode=False)
            conn.last_rx = loop_time()
            out = handle(raw, now_ns())
            if type(out) is list:
                if out:
                    health.record(out)
                    if overflow.empty and try_put(out):
                        continue
                    conflated = overflow.add(out)
                    if conflated:
                        health.conflated(conflated)
            elif out is not None:
                health.drop(out, raw)  # type: ignore[arg-type]


async def _first_of(*waits: asyncio.Task[str] | asyncio.Event, within: float | None = None) -> None:
    """Return when any task is done or any event is set, or after `within` seconds."""
    helpers = [asyncio.ensure_future(w.wait()) for w in waits if isinstance(w, asyncio.Event)]
    tasks = {w for w in waits if isinstance(w, asyncio.Task)}
    try:
        await asyncio.wait({*tasks, *helpers}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
