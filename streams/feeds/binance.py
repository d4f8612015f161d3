"""Binance spot trades over the public market-data websocket, normalized to Ticks.

One connection to `<url>/stream` (the combined-stream envelope), `SUBSCRIBE` requests
for `<id>@trade` of every configured symbol (at most 200 streams a request and 4
requests a second: Binance allows 5 incoming messages a second, pongs included, and
1024 streams a connection). Each acknowledgement is checked; a refusal is counted and
logged. A connection that closes, fails or stays silent for `silence_timeout_s` is
replaced after a jittered backoff, and everything is subscribed again. Malformed
messages are counted by reason (FEED_DROPPED) with a few raw samples kept, never raised.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from streams import metrics
from streams.errors import FeedError, TickFormatError
from streams.feeds.backoff import Backoff
from streams.feeds.interface import FeedConfig, FeedState, FeedStatus
from streams.ticks import Tick, now_ns, split_symbol

log = logging.getLogger(__name__)

VENUE: Final = "binance"
DEFAULT_URL: Final = "wss://stream.binance.com:9443"
MAX_STREAMS: Final = 1024  # per connection
SUBSCRIBE_CHUNK: Final = 200  # streams per SUBSCRIBE request
REQUESTS_PER_S: Final = 4.0  # under Binance's 5 incoming messages/s, leaving room for pongs
SAMPLES_PER_REASON: Final = 5
SAMPLE_BYTES: Final = 512
MAX_BATCH: Final = 4096  # ticks per batch handed to the consumer
METRICS_EVERY: Final = 64  # ticks between updates of the tick metrics (also once a second)

DropReason = Literal[
    "malformed_json", "unknown_shape", "bad_field", "unknown_symbol", "error_reply"
]
_TRADE_EVENTS = frozenset({"trade", "aggTrade"})


class Market(NamedTuple):
    """A configured symbol as a Tick names it."""

    symbol: str  # BTC/USDT
    base: str
    quote: str


def markets(symbols: Sequence[str]) -> dict[str, Market]:
    """Binance symbol -> Market for the unified `symbols`; FeedError on bad or clashing ones."""
    table: dict[str, Market] = {}
    for symbol in symbols:
        try:
            base, quote = split_symbol(symbol)
        except TickFormatError as exc:
            raise FeedError(f"binance feed: {exc}") from exc
        market = Market(f"{base}/{quote}", base, quote)
        other = table.setdefault(base + quote, market)
        if other != market:
            raise FeedError(f"binance feed: {other.symbol} and {symbol} are both {base + quote}")
    return table


# Wire shapes. Only the fields a Tick needs are declared; msgspec skips the others.
class _Trade(msgspec.Struct):
    e: str
    s: str
    p: str
    E: int = 0  # event time, ms
    T: int = 0  # trade time, ms


class _Envelope(msgspec.Struct):
    stream: str
    data: _Trade


class ReplyError(msgspec.Struct):
    """Binance's error object: `{"code": 2, "msg": "Invalid request: ..."}`."""

    code: int = -1
    msg: str = ""


class Reply(msgspec.Struct):
    """An answer to a request: `{"result": null, "id": 1}` or `{"error": {...}, "id": 1}`."""

    id: int | str | None = None
    result: Any = None
    error: ReplyError | None = None


class ServerShutdown(msgspec.Struct):
    """`{"e": "serverShutdown", ...}`: the venue will close this connection soon."""

    E: int = 0


_envelope = msgspec.json.Decoder(_Envelope)


def parse_message(
    raw: bytes | str, symbols: Mapping[str, Market], recv_ns: int | None = None
) -> list[Tick] | Reply | ServerShutdown | DropReason:
    """One websocket message -> its Ticks, a reply, a shutdown notice, or why to drop it.

    Accepts the combined envelope and, for robustness, a bare event (raw `/ws` streams).
    `recv_ns` defaults to now.
    """
    try:
        data = _envelope.decode(raw).data
    except msgspec.ValidationError:
        return _parse_other(raw, symbols, recv_ns)
    except msgspec.DecodeError:
        return "malformed_json"
    if data.e not in _TRADE_EVENTS:
        return "unknown_shape"
    return _tick(data, symbols, recv_ns)


def _parse_other(
    raw: bytes | str, symbols: Mapping[str, Market], recv_ns: int | None
) -> list[Tick] | Reply | ServerShutdown | DropReason:
    """The slow path: anything that is valid JSON but not an enveloped trade."""
    message = msgspec.json.decode(raw)
    if not isinstance(message, dict):
        return "unknown_shape"
    data = message.get("data") if "stream" in message else message
    if not isinstance(data, dict):
        return "unknown_shape"
    event = data.get("e")
    if event is None:
        if "id" in message and ("result" in message or "error" in message):
            try:
                return msgspec.convert(message, Reply)
            except msgspec.ValidationError:
                return "unknown_shape"
        return "unknown_shape"
    if event == "serverShutdown":
        return ServerShutdown(E=data.get("E", 0) if isinstance(data.get("E"), int) else 0)
    if event not in _TRADE_EVENTS:
        return "unknown_shape"
    try:
        trade = msgspec.convert(data, _Trade)
    except msgspec.ValidationError:
        return "bad_field"
    return _tick(trade, symbols, recv_ns)


def _tick(
    trade: _Trade, symbols: Mapping[str, Market], recv_ns: int | None
) -> list[Tick] | DropReason:
    market = symbols.get(trade.s)
    if market is None:
        return "unknown_symbol"
    try:
        price = float(trade.p)
    except ValueError:
        return "bad_field"
    ts_ms = trade.T or trade.E
    if not (price > 0.0 and math.isfinite(price)) or ts_ms <= 0:
        return "bad_field"
    recv = now_ns() if recv_ns is None else recv_ns
    return [Tick(VENUE, market.symbol, market.base, market.quote, price, ts_ms, recv)]


class _SessionEnded(Exception):
    """This connection is finished (silent, shut down by the venue, closed): reconnect."""


_Item = list[Tick] | Exception | None  # an Exception: the feed crashed; None: it stopped


class BinanceFeed:
    """The Binance spot trade feed (see the module docstring); implements `Feed`.

    `start()` launches the connection task; iterate `batches()` for lists of Ticks; `stop()`
    cancels everything and ends `batches()`. A full queue blocks the reader (backpressure).
    """

    def __init__(self, config: FeedConfig, *, rng: random.Random | None = None) -> None:
        if not config.symbols:
            raise FeedError("binance feed: no symbols configured (e.g. symbols = ['BTC/USDT'])")
        self.config = config
        self._markets = markets(config.symbols)
        if len(self._markets) > MAX_STREAMS:
            raise FeedError(
                f"binance feed: {len(self._markets)} symbols, but a connection carries at most "
                f"{MAX_STREAMS} streams; split them over several [[feeds]] entries"
            )
        self._streams = [f"{ident.lower()}@trade" for ident in self._markets]
        self._endpoint = _stream_endpoint(config.url or DEFAULT_URL)
        self._backoff = Backoff.from_config(config, rng)
        self._status = FeedStatus(venue=config.venue)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max(1, config.queue_size))
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self._ids = itertools.count(1)
        self._pending: dict[int, list[str]] = {}
        self._acked = 0
        self._last_rx = 0.0
        self._blocked = False  # the reader waits on a full queue: quiet is not silence
        self._healthy_since: float | None = None
        self._samples: dict[str, deque[bytes]] = {}
        self._reported = 0  # status.ticks already added to the FEED_TICKS counter
        self._m_ticks = metrics.FEED_TICKS.labels(config.venue)
        self._m_last = metrics.FEED_LAST_TICK.labels(config.venue)
        self._m_connected = metrics.FEED_CONNECTED.labels(config.venue)
        self._m_reconnects = metrics.FEED_RECONNECTS.labels(config.venue)

    @property
    def status(self) -> FeedStatus:
        """Live counters and connection state."""
        return self._status

    @property
    def drop_samples(self) -> dict[str, list[bytes]]:
        """The last few raw messages dropped, per reason (truncated), for debugging."""
        return {reason: list(samples) for reason, samples in self._samples.items()}

    async def start(self) -> None:
        """Connect and subscribe in the background (returns at once)."""
        if self._task is not None or self._ended:
            raise FeedError("binance feed: start() called twice; create a new feed instead")
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.config.venue}")

    async def stop(self) -> None:
        """Close the connection, cancel every task, end `batches()`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        self._finish(None)
        self._flush_metrics()
        self._status.state = FeedState.STOPPED
        self._m_connected.set(0)

    async def batches(self) -> AsyncIterator[list[Tick]]:
        """Ticks in arrival order, in batches (whatever arrived since the last one, capped)."""
        queue = self._queue
        while True:
            if self._ended and queue.empty():
                return
            item = await queue.get()
            batch: list[Tick] = []
            while True:
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise FeedError(f"binance feed failed: {item!r}") from item
                batch.extend(item)
                if len(batch) >= MAX_BATCH or queue.empty():
                    break
                item = queue.get_nowait()
            if batch:
                yield batch
            if item is None:
                return

    # The connection loop ------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connect_forever()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a network fault: stop loudly, never silently
            log.exception("binance feed crashed", extra={"venue": self.config.venue})
            self._status.last_error = repr(exc)
            self._status.state = FeedState.STOPPED
            self._m_connected.set(0)
            self._finish(exc)

    async def _connect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in itertools.count():
            if attempt:
                self._status.reconnects += 1
                self._m_reconnects.inc()
            self._status.state = FeedState.CONNECTING
            reason = await self._session()
            self._flush_metrics()
            self._m_connected.set(0)
            healthy = 0.0 if self._healthy_since is None else loop.time() - self._healthy_since
            self._healthy_since = None
            self._backoff.connection_ended(healthy)
            delay = self._backoff.next_delay()
            self._status.state = FeedState.BACKOFF
            self._status.last_error = reason
            log.warning(
                "binance connection ended; reconnecting",
                extra={"venue": self.config.venue, "reason": reason, "delay_s": round(delay, 3)},
            )
            await asyncio.sleep(delay)

    async def _session(self) -> str:
        """One connection, from connect to its end; returns why it ended."""
        ended = "closed"
        self._pending.clear()
        self._acked = 0
        try:
            async with connect(
                self._endpoint,
                open_timeout=10,
                close_timeout=2,
                compression=None,
                max_queue=1024,
                max_size=2**20,
            ) as ws:
                self._last_rx = asyncio.get_running_loop().time()
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._subscribe(ws))
                    group.create_task(self._watch_silence())
                    group.create_task(self._read(ws))
        except* (OSError, TimeoutError, WebSocketException, _SessionEnded) as errors:
            ended = "; ".join(str(e) or type(e).__name__ for e in errors.exceptions)
        return ended

    async def _subscribe(self, ws: ClientConnection) -> None:
        streams, size = self._streams, SUBSCRIBE_CHUNK
        chunks = {next(self._ids): streams[i : i + size] for i in range(0, len(streams), size)}
        self._pending.update(chunks)  # all of them: SUBSCRIBED waits for the last ack
        for n, (request_id, chunk) in enumerate(chunks.items()):
            if n:
                await asyncio.sleep(1.0 / REQUESTS_PER_S)
            request = {"method": "SUBSCRIBE", "params": chunk, "id": request_id}
            await ws.send(msgspec.json.encode(request), text=True)

    async def _watch_silence(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.config.silence_timeout_s
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            self._flush_metrics()
            if self._blocked:
                self._last_rx = loop.time()
                continue
            quiet = loop.time() - self._last_rx
            if quiet > limit:
                raise _SessionEnded(f"silent for {quiet:.1f}s (limit {limit}s)")

    async def _read(self, ws: ClientConnection) -> None:
        loop_time = asyncio.get_running_loop().time
        queue, status, symbols = self._queue, self._status, self._markets
        while True:
            raw = await ws.recv(decode=False)
            self._last_rx = loop_time()
            out = parse_message(raw, symbols, now_ns())
            if type(out) is list:
                status.ticks += len(out)
                status.last_tick_ns = out[-1].recv_ns
                if status.ticks - self._reported >= METRICS_EVERY:
                    self._flush_metrics()
                try:
                    queue.put_nowait(out)
                except asyncio.QueueFull:
                    self._blocked = True
                    try:
                        await queue.put(out)
                    finally:
                        self._blocked = False
                        self._last_rx = loop_time()
            elif isinstance(out, Reply):
                self._on_reply(out, raw, loop_time())
            elif isinstance(out, ServerShutdown):
                raise _SessionEnded("the venue announced a server shutdown")
            else:
                self._drop(out, raw)  # type: ignore[arg-type]

    def _on_reply(self, reply: Reply, raw: bytes, now: float) -> None:
        chunk = self._pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if reply.error is not None:
            self._drop("error_reply", raw)
            self._status.last_error = f"binance refused request {reply.id}: {reply.error.msg}"
            log.error(
                "binance refused request %s: %s",
                reply.id,
                reply.error.msg,
                extra={"venue": self.config.venue, "id": reply.id, "code": reply.error.code},
            )
        elif chunk is not None:
            self._acked += 1
        if not self._pending and self._acked and self._status.state is not FeedState.SUBSCRIBED:
            self._mark_subscribed(now)

    def _flush_metrics(self) -> None:
        """Tick metrics are updated in bulk (every METRICS_EVERY ticks, or each second)."""
        status = self._status
        if status.ticks != self._reported:
            self._m_ticks.inc(status.ticks - self._reported)
            self._m_last.set(status.last_tick_ns / 1e9)
            self._reported = status.ticks

    def _mark_subscribed(self, now: float) -> None:
        self._status.state = FeedState.SUBSCRIBED
        self._healthy_since = now
        self._m_connected.set(1)
        log.info(
            "binance subscribed",
            extra={"venue": self.config.venue, "streams": len(self._streams)},
        )

    def _drop(self, reason: DropReason, raw: bytes) -> None:
        dropped = self._status.dropped
        count = dropped[reason] = dropped.get(reason, 0) + 1
        metrics.FEED_DROPPED.labels(self.config.venue, reason).inc()
        sample = bytes(raw[:SAMPLE_BYTES])
        self._samples.setdefault(reason, deque(maxlen=SAMPLES_PER_REASON)).append(sample)
        if count & (count - 1) == 0:  # 1st, 2nd, 4th, 8th...: visible, never a flood
            log.warning(
                "dropped a binance message",
                extra={"venue": self.config.venue, "reason": reason, "count": count, "raw": sample},
            )

    def _finish(self, marker: Exception | None) -> None:
        """Tell `batches()` the feed is over; make room by dropping the oldest batch if full."""
        if self._ended:
            return
        self._ended = True
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(marker)


def _stream_endpoint(url: str) -> str:
    """The combined-stream endpoint for a base URL (`.../ws` and `.../stream` accepted too)."""
    if not url.startswith(("ws://", "wss://")):
        raise FeedError(f"binance feed: url {url!r} must start with ws:// or wss://")
    url = url.rstrip("/")
    if url.endswith("/stream"):
        return url
    if url.endswith("/ws"):
        url = url[: -len("/ws")]
    return url + "/stream"
