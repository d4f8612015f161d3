"""Kraken WebSocket v2 market data (`ticker` or `trade`), normalized to Ticks.

Endpoint `wss://ws.kraken.com/v2`. On connect the venue sends a `status` message; the
feed subscribes with `{"method": "subscribe", "params": {"channel": "ticker", "symbol":
[...], "snapshot": true}, "req_id": N}` and Kraken answers once per symbol (`success`
true, or false with `error`). `snapshot` is always set explicitly: Kraken's two trade
pages document opposite defaults. Data: `{"channel": "ticker" | "trade", "type":
"snapshot" | "update", "data": [...]}` with JSON numbers (read as exact decimals, never
through float, for `Tick.price_exact`); `{"channel": "heartbeat"}` about once a second.
A ticker snapshot is the current state and passes like an update. A trade snapshot is
the last 50 trades, history: of it only the newest trade per symbol is passed on, marked
`snapshot` (it seeds the price board at its own, older, time), and only when it is newer
than what this feed already passed on; during a rollover none (the old connection is
live). The ticker's `timestamp` is the tick time (the receive time when absent). `last`
is only guaranteed for a pair traded in the past 24 hours: a ticker without it is
skipped as `no_last_price`, not malformed. Liveness is Kraken's own application ping,
`{"method": "ping", "req_id": N}` answered by `{"method": "pong", "req_id": N, ...}`,
sent every `ping_interval_s`: a ping still unanswered when the next is due ends the
connection (a stall), besides the silence watchdog. Kraken v2 writes Bitcoin `BTC` and
Dogecoin `DOGE`; the older names its other APIs use (`XBT`, `XDG`, `XXBT`, `ZUSD`...,
ccxt's `commonCurrencies` for Kraken) are read as aliases, in configuration and on the
wire. Sources: /work/shared/reference/exchange-feeds.md; docs.kraken.com
spot-websocket-v2; ccxt `kraken.py`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from decimal import Decimal
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
# Kraken's older asset codes -> v2's (ccxt `kraken.py` commonCurrencies, the plain
# renames; ccxt's LUNA/UST/REP re-codings are not aliases and are left out).
_ALIASES: Final = {
    "XBT": "BTC",
    "XXBT": "BTC",
    "XDG": "DOGE",
    "XXDG": "DOGE",
    "XETH": "ETH",
    "XETC": "ETC",
    "XLTC": "LTC",
    "XMLN": "MLN",
    "XXLM": "XLM",
    "XXMR": "XMR",
    "XXRP": "XRP",
    "XZEC": "ZEC",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "ZAUD": "AUD",
}


class KrakenFeed(SocketFeed):
    """The Kraken v2 ticker/trade feed (see the module docstring); implements `Feed`."""

    def __init__(self, config: FeedConfig, *, rng: random.Random | None = None) -> None:
        super().__init__(config, KrakenProtocol(config), rng=rng)


def pairs(symbols: tuple[str, ...]) -> dict[str, Market]:
    """Kraken v2 pair (`BTC/USD`) -> Market; older codes (`XBT/USD`, `XDG/ZUSD`) map too."""
    unified = tuple(_unalias(s) for s in symbols)
    table = market_table(VENUE, unified, lambda base, quote: f"{base}/{quote}")
    names: dict[str, list[str]] = {}
    for old, new in _ALIASES.items():
        names.setdefault(new, [new]).append(old)
    for market in list(table.values()):
        for base in names.get(market.base, [market.base]):
            for quote in names.get(market.quote, [market.quote]):
                table.setdefault(f"{base}/{quote}", market)
    return table


def _unalias(symbol: str) -> str:
    base, sep, quote = symbol.upper().partition("/")
    return f"{_ALIASES.get(base, base)}{sep}{_ALIASES.get(quote, quote)}"


class _Ticker(msgspec.Struct):
    symbol: str
    last: Decimal | None = None  # only guaranteed if the pair traded in the past 24 h
    bid: Decimal | None = None
    ask: Decimal | None = None
    timestamp: str = ""


class _Trade(msgspec.Struct):
    symbol: str
    price: Decimal
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


_decoder = msgspec.json.Decoder(_Message, float_hook=Decimal)  # numbers exactly


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
        self.last_trade_ids: dict[str, int] = {}  # symbol -> newest trade id passed on

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
        params = {
            "channel": self._protocol.channel,
            "symbol": self._protocol.subscribe_symbols,
            "snapshot": True,  # explicit: the docs give both defaults for trade
        }
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
        items = message.data or []
        if message.type == "snapshot" and self._item is _Trade:
            items = self._newest_trades(items)
            if not items:
                return []
        ticks: list[Tick] = []
        problems: list[str] = []
        for item in items:
            out = self._tick(item, recv_ns, snapshot=message.type == "snapshot")
            if isinstance(out, str):
                problems.append(out)
            elif out is not None:
                ticks.append(out)
        if not ticks:
            return problems[0] if problems else ([] if message.data else "unknown_shape")
        for reason in problems:
            self._link.drop(reason, raw)
        return ticks

    def _newest_trades(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of a trade snapshot (history), the newest trade per symbol not yet passed on.

        Nothing during a rollover: the old connection still delivers the live trades.
        """
        if self._link.overlap is not None:
            return []
        newest: dict[str, dict[str, Any]] = {}
        for item in items:
            symbol, trade_id = item.get("symbol"), item.get("trade_id")
            if not isinstance(symbol, str) or not isinstance(trade_id, int):
                newest.setdefault(f"?{len(newest)}", item)  # let _tick say what is wrong
                continue
            best = newest.get(symbol)
            if best is None or trade_id > best["trade_id"]:
                newest[symbol] = item
        passed = self._protocol.last_trade_ids
        out = []
        for symbol, item in newest.items():
            market = self._pairs.get(symbol)
            if market is not None and item["trade_id"] <= passed.get(market.symbol, -1):
                continue  # already passed on, live, before this connection
            out.append(item)
        return out

    def _tick(self, item: dict[str, Any], recv_ns: int, *, snapshot: bool) -> Tick | str | None:
        """A Tick, a drop reason, or None (a trade already passed on during a rollover)."""
        try:
            data: _Ticker | _Trade = msgspec.convert(item, self._item)
        except msgspec.ValidationError:
            return "bad_field"
        market = self._pairs.get(data.symbol)
        if market is None:
            return "unknown_symbol"
        exact = data.last if isinstance(data, _Ticker) else data.price
        if exact is None:
            return "no_last_price"  # not traded in the past 24 hours: nothing to tell
        try:
            ts_ms = parse_ts(data.timestamp) if data.timestamp else recv_ns // 1_000_000
        except TickFormatError:
            return "bad_field"
        price = float(exact)
        if not (price > 0.0 and math.isfinite(price)):
            return "bad_field"
        m = market
        if isinstance(data, _Ticker):
            bid = float(data.bid) if data.bid is not None else None
            ask = float(data.ask) if data.ask is not None else None
            return Tick(
                VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv_ns, bid, ask, str(exact)
            )
        is_snapshot = snapshot
        tick = Tick(
            VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv_ns, None, None, str(exact),
            is_snapshot,
        )  # fmt: skip
        overlap = self._link.overlap  # a rollover (only if max_connection_age_s is set)
        if overlap is not None and not overlap.admit(self._link.serial, tick, data.trade_id):
            return None
        last = self._protocol.last_trade_ids
        if data.trade_id > last.get(m.symbol, -1):
            last[m.symbol] = data.trade_id
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
