"""A simulated Binance spot market-data websocket on loopback, for the demo, tests and benchmarks.

It speaks the documented protocol (see /work/shared/reference/exchange-feeds.md): raw
`/ws/<stream>` and combined `/stream?streams=a/b` paths, live `SUBSCRIBE`,
`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`/`GET_PROPERTY` (`combined`), Binance's
error replies, and the limits: 1024 streams per connection, and 5 incoming messages a
second per connection counting every frame the client sends (requests, pings and pongs
alike; one more and the connection is closed with 1008). Like Binance it sends a ping
frame every `ping_interval` (20 s) and closes a connection that has not answered within
`ping_timeout` (60 s); it sends no heartbeat messages. Connections are closed at
`max_connection_age_s` (24 hours); `announce_shutdown()` sends `serverShutdown` and closes
a little later. `timeUnit=MICROSECOND` in the URL query gives microsecond times.
Streams: `<id>@trade`, `@aggTrade`, `@miniTicker` (what ccxt's `watch_ticker` uses),
`@bookTicker`. Every `tick_interval_ms` the price paths advance one step (for all
symbols) and every subscribed stream gets one event, except the trade streams of
`quiet_symbols`, which trade never (a quiet market: minutes without a trade are normal).
Quotes USDT, USDC, USD, FDUSD are priced as USD; a quote that is itself a simulated
asset (e.g. ETH/BTC) is a cross rate. Event and trade times are the wall clock in ms
unless a `clock` is given. Lifecycle, market clock and faults are `SimulatedVenue`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event

from streams.simulator.board import Listing
from streams.simulator.control import (
    ControlError,
    ControlRequest,
    check_property,
    check_stream_names,
    encode_result,
    parse_control,
    valid_stream_name,
)
from streams.simulator.server import RequestRate
from streams.simulator.venue import SimulatedVenue

__all__ = ["STREAM_KINDS", "BinanceSimulator", "SubscribeRecord"]

log = logging.getLogger(__name__)

STREAM_KINDS = ("trade", "aggTrade", "miniTicker", "bookTicker")
MAX_STREAMS = 1024  # per connection, as on Binance
MAX_AGE_S = 24 * 3600.0  # Binance closes every connection at 24 hours
_COUNTED = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG})


# Binance's field names and order; `name=` keeps single-letter keys ruff would flag.
class _Trade(msgspec.Struct):
    e: str
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    M: bool


class _AggTrade(msgspec.Struct):
    e: str
    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    last: int = msgspec.field(name="l")
    T: int = 0
    m: bool = False
    M: bool = True


class _MiniTicker(msgspec.Struct):
    e: str
    E: int
    s: str
    c: str
    o: str
    h: str
    low: str = msgspec.field(name="l")
    v: str = "0"
    q: str = "0"


class _BookTicker(msgspec.Struct):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str


_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class SubscribeRecord:
    """One SUBSCRIBE request as received: connection serial (from 1), params, time.monotonic()."""

    connection: int
    params: tuple[str, ...]
    at: float


@dataclass(slots=True)
class _Stream:
    name: str
    kind: str
    listing: int  # index into the quote board
    prefix: bytes  # combined-envelope opening: {"stream":"<name>","data":


@dataclass(slots=True)
class _Client:
    ws: ServerConnection
    serial: int
    combined: bool
    streams: dict[str, _Stream | None] = field(default_factory=dict)  # None: no such market
    rate: RequestRate = field(default_factory=RequestRate)
    micro: bool = False  # timeUnit=MICROSECOND: times in microseconds

    def plan(self) -> list[_Stream]:
        return [s for s in self.streams.values() if s is not None]


class RatedConnection(ServerConnection):
    """A server connection that counts every frame the client sends (Binance's rate limit).

    `rate` is set by the handler; over the limit the connection is closed with 1008.
    """

    rate: RequestRate | None = None
    frames_received = 0

    def process_event(self, event: Event) -> None:
        super().process_event(event)
        if not isinstance(event, Frame) or event.opcode not in _COUNTED:
            return
        self.frames_received += 1
        if self.rate is not None and self.rate.exceeded():
            self.rate = None  # close once
            asyncio.get_running_loop().create_task(self.close(1008, "Too many requests"))


class BinanceSimulator(SimulatedVenue):
    """Simulated Binance spot market data for unified `symbols` (e.g. 'BTC/USDT').

    `start()` binds `host:port` (port 0: a free one); `url` is then the base URL to give a
    feed. Usable as `async with`. Fault injection (see `SimulatedVenue`):
    `drop_connections()`, `send_raw()`, `stall()`, `set_price()`, `flash_wick()`,
    `drift_peg()`; `max_connection_age_s` closes connections at that age, as Binance does
    at 24 hours.
    """

    name: ClassVar[str] = "binance"

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 7,
        tick_interval_ms: float = 50.0,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
        *,
        max_requests_per_s: int | None = 5,
        quiet_symbols: Sequence[str] = (),
        **options: Any,
    ) -> None:
        options.setdefault("max_connection_age_s", MAX_AGE_S)
        options.setdefault("create_connection", RatedConnection)
        super().__init__(
            symbols, seed, tick_interval_ms, seconds_per_step, volatility_scale, **options
        )
        self._quiet = {
            i for i, x in enumerate(self.board.listings) if x.symbol in set(quiet_symbols)
        }
        self._by_stream_id = {x.stream_id: i for i, x in enumerate(self.board.listings)}
        self._max_requests = max_requests_per_s
        self._clients: dict[ServerConnection, _Client] = {}
        self._cache: dict[str, bytes] = {}
        self._event_ms = 0
        self.subscribe_log: list[SubscribeRecord] = []

    @property
    def connections_open(self) -> int:
        """Connections open now."""
        return len(self._clients)

    @property
    def subscribe_requests(self) -> int:
        """SUBSCRIBE requests received since start."""
        return len(self.subscribe_log)

    def announce_shutdown(self, close_after_s: float = 1.0) -> int:
        """Send `serverShutdown` to every connection, close them `close_after_s` later.

        Binance promises no lead time; returns how many connections were told.
        """
        event = _encode({"e": "serverShutdown", "E": self._event_ms})  # no clock reading
        told = 0
        for client in list(self._clients.values()):
            message = b'{"stream":"!serverShutdown","data":' + event + b"}"
            self._server.send_to(client.ws, message if client.combined else event)
            told += 1
            self._server.close_later(client.ws, close_after_s, "server shutdown")
        return told

    def subscriptions(self) -> list[tuple[str, ...]]:
        """The streams of each open connection, in subscription order."""
        return [tuple(c.streams) for c in self._clients.values()]

    # Connections and requests ------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path.rstrip("/")
        if path == "/ws" or path.startswith("/ws/") or path == "/stream":
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "Not found: use /ws/<stream> or /stream\n")

    async def _serve_client(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request else "/ws")
        combined = url.path.rstrip("/") == "/stream"
        query = parse_qs(url.query)
        names = query.get("streams", [""])[0] if combined else url.path[4:]
        rate = RequestRate(self._max_requests)
        if isinstance(ws, RatedConnection):
            ws.rate = rate
        micro = query.get("timeUnit", [""])[0].upper() == "MICROSECOND"
        client = _Client(ws, self._server.connections_total, combined, rate=rate, micro=micro)
        for name in filter(None, names.split("/")):
            if valid_stream_name(name, STREAM_KINDS):
                client.streams[name] = self._resolve(name)
        self._clients[ws] = client
        self._update_streaming()
        try:
            async for raw in ws:
                if not isinstance(ws, RatedConnection) and client.rate.exceeded():
                    await ws.close(1008, "Too many requests")
                    return
                await self._server.wait_unstalled()
                await ws.send(self._answer(client, raw), text=True)
        except ConnectionClosed:
            pass
        finally:
            del self._clients[ws]
            self._update_streaming()

    def _answer(self, client: _Client, raw: str | bytes) -> bytes:
        try:
            request = parse_control(raw)
            result = self._execute(client, request)
        except ControlError as exc:
            return exc.reply()
        return encode_result(result, request.id)

    def _execute(self, client: _Client, request: ControlRequest) -> Any:
        if request.method == "LIST_SUBSCRIPTIONS":
            return list(client.streams)
        if request.method in ("SET_PROPERTY", "GET_PROPERTY"):
            value = check_property(request)
            if value is None:
                return client.combined
            client.combined = value
            return None
        names = check_stream_names(request, STREAM_KINDS)
        if request.method == "UNSUBSCRIBE":
            for name in names:
                client.streams.pop(name, None)
        else:
            record = SubscribeRecord(client.serial, tuple(names), time.monotonic())
            self.subscribe_log.append(record)
            if len(client.streams.keys() | set(names)) > MAX_STREAMS:
                raise ControlError(4, "Too many subscriptions", request.id)
            for name in names:
                client.streams.setdefault(name, self._resolve(name))
        self._update_streaming()
        return None

    def _resolve(self, name: str) -> _Stream | None:
        stream_id, _, kind = name.partition("@")
        listing = self._by_stream_id.get(stream_id)
        if listing is None:
            return None  # Binance accepts it and sends nothing
        return _Stream(name, kind, listing, b'{"stream":"' + name.encode() + b'","data":')

    def _update_streaming(self) -> None:
        if any(s is not None for c in self._clients.values() for s in c.streams.values()):
            self._streaming.set()
        else:
            self._streaming.clear()

    # The market clock ----------------------------------------------------------------------

    async def _step(self) -> None:
        self.board.step()
        self._event_ms = self._now_ms()
        self._cache.clear()
        for client in list(self._clients.values()):
            plan = [s for s in client.plan() if not self._silent(s)]
            if not plan:
                continue
            messages = [self._message(s, client.combined, client.micro) for s in plan]
            await self._send(client.ws, messages)

    def _silent(self, stream: _Stream) -> bool:
        """A quiet symbol's trade streams send nothing (no trade happened)."""
        return stream.listing in self._quiet and stream.kind in ("trade", "aggTrade")

    def _message(self, stream: _Stream, combined: bool, micro: bool = False) -> bytes:
        key = stream.name + ("/us" if micro else "")
        payload = self._cache.get(key)
        if payload is None:
            payload = self._cache[key] = self._event(stream, micro)
        return stream.prefix + payload + b"}" if combined else payload

    def _event(self, stream: _Stream, micro: bool = False) -> bytes:
        # Microsecond times: the ms clock plus a sub-ms part, so a reader must divide.
        board, i = self.board, stream.listing
        now = self._event_ms * 1000 + 417 if micro else self._event_ms
        x: Listing = board.listings[i]
        sym, price, qty, tid = (
            x.exchange_id,
            board.price_str(i),
            board.qty_str(i),
            board.trade_id(i),
        )
        if stream.kind == "trade":
            return _encode(
                _Trade("trade", now, sym, tid, price, qty, now, board.went_down(i), True)
            )
        if stream.kind == "aggTrade":
            down = board.went_down(i)
            return _encode(_AggTrade("aggTrade", now, sym, tid, price, qty, tid, tid, now, down))
        if stream.kind == "miniTicker":
            o, h, low, v, q = board.day_stats(i)
            return _encode(_MiniTicker("24hrMiniTicker", now, sym, price, o, h, low, v, q))
        bid, ask = board.book(i)
        return _encode(_BookTicker(tid, sym, bid, qty, ask, qty))
