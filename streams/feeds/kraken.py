"""Kraken WebSocket v2 market data (`ticker` or `trade`), normalized to Ticks.

Endpoint `wss://ws.kraken.com/v2`. On connect the venue sends a `status` message; the
feed subscribes with `{"method": "subscribe", "params": {"channel": "ticker", "symbol":
[...]}, "req_id": N}` and Kraken answers once per symbol (`success` true, or false with
`error`). Data: `{"channel": "ticker" | "trade", "type": "snapshot" | "update", "data":
[...]}` with JSON numbers (not strings); `{"channel": "heartbeat"}` about once a second.
Liveness is Kraken's own application ping, `{"method": "ping", "req_id": N}` answered
by `{"method": "pong", "req_id": N, ...}`, sent every `ping_interval_s`: a ping still
unanswered when the next is due ends the connection (a stall), besides the silence
watchdog. Kraken v2 writes Bitcoin `BTC` (older APIs `XBT`, accepted as an alias). The
ticker carries no time of its own: its ticks are stamped with the receive time.
Sources: /work/shared/reference/exchange-feeds.md; docs.kraken.com spot-websocket-v2.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from typing import Any, Final

import msgspec

from streams.errors import FeedError, TickFormatError
from streams.feeds.connection import FeedConnection
from streams.feeds.interface import FeedConfig
from streams.feeds.session import SessionEnded, SessionLink
from streams.feeds.socket_feed import SocketFeed
from streams.feeds.symbols import Market, market_table
from streams.ticks import Tick, parse_ts

__all__ = ["CHANNELS", "DEFAULT_URL", "KrakenFeed", "KrakenProtocol", "pairs"]

VENUE: Final = "kraken"
DEFAULT_URL: Final = "wss://ws.kraken.com/v2"
CHANNELS: Final = ("ticker", "trade")
_ALIASES: Final = {"XBT": "BTC"}


class KrakenFeed(SocketFeed):
    """The Kraken v2 ticker/trade feed (see the module docstring); implements `Feed`."""

    def __init__(self, config: FeedConfig, *, rng: random.Random | None = None) -> None:
        super().__init__(config, KrakenProtocol(config), rng=rng)


def pairs(symbols: tuple[str, ...]) -> dict[str, Market]:
    """Kraken v2 pair (`BTC/USD`) -> Market; `XBT` is read as `BTC` both ways."""
    unified = tuple(_unalias(s) for s in symbols)
    table = market_table(VENUE, unified, lambda base, quote: f"{base}/{quote}")
    for old, new in _ALIASES.items():
        for market in [m for m in table.values() if m.base == new]:
            table.setdefault(f"{old}/{market.quote}", market)
    return table


def _unalias(symbol: str) -> str:
    base, sep, quote = symbol.upper().partition("/")
    return f"{_ALIASES.get(base, base)}{sep}{quote}"


class _Ticker(msgspec.Struct):
    symbol: str
    last: float
    bid: float | None = None
    ask: float | None = None
    timestamp: str = ""  # not in Kraken's documented ticker; used if it ever appears


class _Trade(msgspec.Struct):
    symbol: str
    price: float
    timestamp: str
    trade_id: int = 0


class _Message(msgspec.Struct):
    channel: str = ""
    type: str = ""
    data: list[dict[str, Any]] | None = None
    method: str = ""
    success: bool | None = None
    req_id: int | None = None
    error: str = ""
    result: dict[str, Any] | None = None
    symbol: str = ""


_decoder = msgspec.json.Decoder(_Message)


class KrakenProtocol:
    """Where to connect and what to subscribe, for one Kraken feed."""

    def __init__(self, config: FeedConfig) -> None:
        self.channel = config.channel or "ticker"
        if self.channel not in CHANNELS:
            raise FeedError(f"kraken feed: channel {self.channel!r} is not one of {CHANNELS}")
        self.pairs = pairs(config.symbols)
        self.subscribe_symbols = sorted({m.symbol for m in self.pairs.values()})
        url = config.url or DEFAULT_URL
        if not url.startswith(("ws://", "wss://")):
            raise FeedError(f"kraken feed: url {url!r} must start with ws:// or wss://")
        self.endpoint = url
        self.client_ping_interval_s: float | None = 20.0  # websocket pings, no venue limit
        self.control_limit: int | None = None
        self.ping_interval_s = config.ping_interval_s

    def session(self, link: SessionLink) -> KrakenSession:
        """The state of one new connection."""
        return KrakenSession(self, link)


class KrakenSession:
    """One Kraken connection: the subscription and its per-symbol acks, pings, data."""

    def __init__(self, protocol: KrakenProtocol, link: SessionLink) -> None:
        self._protocol = protocol
        self._link = link
        self._pairs = protocol.pairs
        self._ids = itertools.count(1)
        self._pending = set(protocol.subscribe_symbols)
        self._acked = 0
        self._unanswered: int | None = None  # req_id of the last ping until its pong
        self._item: type[_Ticker] | type[_Trade] = (
            _Ticker if protocol.channel == "ticker" else _Trade
        )

    async def subscribe(self, ws: FeedConnection) -> None:
        params = {"channel": self._protocol.channel, "symbol": self._protocol.subscribe_symbols}
        request = {"method": "subscribe", "params": params, "req_id": next(self._ids)}
        await ws.send(msgspec.json.encode(request), text=True)

    async def keepalive(self, ws: FeedConnection) -> None:
        interval = self._protocol.ping_interval_s
        while True:
            await asyncio.sleep(interval)
            if self._unanswered is not None:
                raise SessionEnded(f"no pong to ping {self._unanswered} in {interval}s", stall=True)
            self._unanswered = next(self._ids)
            ping = {"method": "ping", "req_id": self._unanswered}
            await ws.send(msgspec.json.encode(ping), text=True)

    def handle(self, raw: bytes, recv_ns: int) -> list[Tick] | str | None:
        try:
            message = _decoder.decode(raw)
        except msgspec.ValidationError:  # valid JSON: an object with a bad field, or no object
            return "bad_field" if raw.lstrip()[:1] == b"{" else "unknown_shape"
        except msgspec.DecodeError:
            return "malformed_json"
        channel = message.channel
        if channel == self._protocol.channel:
            return self._data(message, raw, recv_ns)
        if channel in ("heartbeat", "status"):
            return None
        method = message.method
        if method == "pong":
            if message.req_id == self._unanswered:
                self._unanswered = None
            return None
        if method == "subscribe":
            return self._on_subscribe(message)
        if message.success is False:
            self._link.refused(f"kraken refused {method or 'a request'}: {message.error}")
            return "error_reply"
        if method == "unsubscribe":
            return None
        return "unknown_shape"

    def _data(self, message: _Message, raw: bytes, recv_ns: int) -> list[Tick] | str:
        """Every item's Tick; bad items are counted, good ones of the same message pass."""
        ticks: list[Tick] = []
        problems: list[str] = []
        for item in message.data or ():
            out = self._tick(item, recv_ns)
            if isinstance(out, str):
                problems.append(out)
            elif out is not None:
                ticks.append(out)
        if not ticks:
            return problems[0] if problems else ([] if message.data else "unknown_shape")
        for reason in problems:
            self._link.drop(reason, raw)
        return ticks

    def _tick(self, item: dict[str, Any], recv_ns: int) -> Tick | str | None:
        """A Tick, a drop reason, or None (a trade already passed on during a rollover)."""
        try:
            data: _Ticker | _Trade = msgspec.convert(item, self._item)
        except msgspec.ValidationError:
            return "bad_field"
        market = self._pairs.get(data.symbol)
        if market is None:
            return "unknown_symbol"
        price = data.last if isinstance(data, _Ticker) else data.price
        try:
            ts_ms = parse_ts(data.timestamp) if data.timestamp else recv_ns // 1_000_000
        except TickFormatError:
            return "bad_field"
        if not (price > 0.0 and math.isfinite(price)):
            return "bad_field"
        if isinstance(data, _Ticker):
            m = market
            return Tick(VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv_ns, data.bid, data.ask)
        tick = Tick(VENUE, market.symbol, market.base, market.quote, price, ts_ms, recv_ns)
        overlap = self._link.overlap  # a rollover (only if max_connection_age_s is set)
        if overlap is not None and not overlap.admit(self._link.serial, tick, data.trade_id):
            return None
        return tick

    def _on_subscribe(self, message: _Message) -> str | None:
        symbol = str((message.result or {}).get("symbol", "")) or message.symbol
        self._pending.discard(symbol)
        if message.success:
            self._acked += 1
            outcome = None
        else:
            self._link.refused(f"kraken refused the subscription to {symbol}: {message.error}")
            outcome = "error_reply"
        if not self._pending and self._acked:
            self._link.subscribed()
        return outcome
