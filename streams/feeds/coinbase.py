"""Coinbase Advanced Trade market data (`ticker` or `ticker_batch`, plus `heartbeats`).

Endpoint `wss://advanced-trade-ws.coinbase.com`; the subscriptions must be sent within
a few seconds of connecting: `{"type": "subscribe", "product_ids": [...], "channel":
"ticker"}` and `{"type": "subscribe", "channel": "heartbeats"}` (a message a second keeps
quiet connections open and feeds the silence watchdog). The venue acknowledges on the
`subscriptions` channel. Every message carries `sequence_num`, one more per message on
a connection: a jump is a gap (counted, with the messages missed); an older number is a
replay and is dropped (`stale_sequence`). Errors arrive as `{"type": "error", "message":
...}`. Prices are strings; the tick time is the message `timestamp` (RFC 3339, ns).
Coinbase serves `-USDC` products from the `-USD` book on public channels, so a `BTC-USD`
ticker received for a configured `BTC/USDC` is passed on as `BTC/USD` (what it is).
Sources: /work/shared/reference/exchange-feeds.md; docs.cdp.coinbase.com Advanced Trade
WebSocket channels.
"""

from __future__ import annotations

import math
import random
from typing import Final

import msgspec

from streams.errors import FeedError, TickFormatError
from streams.feeds.connection import FeedConnection
from streams.feeds.interface import FeedConfig
from streams.feeds.session import SessionLink
from streams.feeds.socket_feed import SocketFeed
from streams.feeds.symbols import Market, market_table
from streams.ticks import Tick, parse_ts

__all__ = ["CHANNELS", "DEFAULT_URL", "CoinbaseFeed", "CoinbaseProtocol", "products"]

VENUE: Final = "coinbase"
DEFAULT_URL: Final = "wss://advanced-trade-ws.coinbase.com"
CHANNELS: Final = ("ticker", "ticker_batch")


class CoinbaseFeed(SocketFeed):
    """The Coinbase Advanced Trade ticker feed (see the module docstring); implements `Feed`."""

    def __init__(self, config: FeedConfig, *, rng: random.Random | None = None) -> None:
        super().__init__(config, CoinbaseProtocol(config), rng=rng)


def products(symbols: tuple[str, ...]) -> dict[str, Market]:
    """Coinbase product id (`BTC-USD`) -> Market; `X-USD` also stands for a configured X/USDC."""
    table = market_table(VENUE, symbols, lambda base, quote: f"{base}-{quote}")
    for market in list(table.values()):
        if market.quote == "USDC":
            table.setdefault(f"{market.base}-USD", Market(f"{market.base}/USD", market.base, "USD"))
    return table


# Wire shapes: only what a Tick, an ack or the sequence check needs.
class _Ticker(msgspec.Struct):
    product_id: str = ""
    price: str = ""
    best_bid: str = ""
    best_ask: str = ""


class _Event(msgspec.Struct):
    type: str = ""
    tickers: list[_Ticker] | None = None
    subscriptions: dict[str, list[str]] | None = None


class _Message(msgspec.Struct):
    channel: str = ""
    timestamp: str = ""
    sequence_num: int = -1
    events: list[_Event] = []
    type: str = ""  # "error" on error messages
    message: str = ""


_decoder = msgspec.json.Decoder(_Message)


class CoinbaseProtocol:
    """Where to connect and what to subscribe, for one Coinbase feed."""

    def __init__(self, config: FeedConfig) -> None:
        self.channel = config.channel or "ticker"
        if self.channel not in CHANNELS:
            raise FeedError(f"coinbase feed: channel {self.channel!r} is not one of {CHANNELS}")
        self.configured = market_table(VENUE, config.symbols, lambda b, q: f"{b}-{q}")
        self.products = products(config.symbols)
        url = config.url or DEFAULT_URL
        if not url.startswith(("ws://", "wss://")):
            raise FeedError(f"coinbase feed: url {url!r} must start with ws:// or wss://")
        self.endpoint = url
        self.client_ping_interval_s: float | None = 20.0  # websocket pings, no venue limit
        self.control_limit: int | None = None

    def session(self, link: SessionLink) -> CoinbaseSession:
        """The state of one new connection (its own sequence numbers)."""
        return CoinbaseSession(self, link)


class CoinbaseSession:
    """One Coinbase connection: subscriptions, their ack, sequence numbers, tickers."""

    def __init__(self, protocol: CoinbaseProtocol, link: SessionLink) -> None:
        self._protocol = protocol
        self._link = link
        self._products = protocol.products
        self._next_seq: int | None = None

    async def subscribe(self, ws: FeedConnection) -> None:
        ids = list(self._protocol.configured)
        ticker = {"type": "subscribe", "product_ids": ids, "channel": self._protocol.channel}
        await ws.send(msgspec.json.encode(ticker), text=True)
        heartbeats = {"type": "subscribe", "channel": "heartbeats"}
        await ws.send(msgspec.json.encode(heartbeats), text=True)

    async def keepalive(self, ws: FeedConnection) -> None:
        """The heartbeats channel keeps the connection alive; nothing to send."""

    def handle(self, raw: bytes, recv_ns: int) -> list[Tick] | str | None:
        try:
            message = _decoder.decode(raw)
        except msgspec.ValidationError:  # valid JSON: an object with a bad field, or no object
            return "bad_field" if raw.lstrip()[:1] == b"{" else "unknown_shape"
        except msgspec.DecodeError:
            return "malformed_json"
        if message.sequence_num >= 0 and not self._in_sequence(message.sequence_num):
            return "stale_sequence"
        channel = message.channel
        if channel in CHANNELS:
            return self._tickers(message, raw, recv_ns)
        if channel == "heartbeats":
            return None
        if channel == "subscriptions":
            self._on_subscriptions(message)
            return None
        if message.type == "error":
            self._link.refused(f"coinbase error: {message.message}")
            return "error_reply"
        return "unknown_shape"

    def _in_sequence(self, seq: int) -> bool:
        """Check `seq` against the last one; count a gap; False for a replayed number."""
        expected = self._next_seq
        if expected is not None:
            if seq < expected:
                return False
            if seq > expected:
                self._link.gap(seq - expected)
        self._next_seq = seq + 1
        return True

    def _tickers(self, message: _Message, raw: bytes, recv_ns: int) -> list[Tick] | str:
        try:
            ts_ms = parse_ts(message.timestamp)
        except TickFormatError:
            return "bad_field"
        ticks: list[Tick] = []
        problems: list[str] = []
        for event in message.events:
            for ticker in event.tickers or ():
                if not ticker.product_id and not ticker.price:
                    continue  # Coinbase sometimes sends an all-empty ticker: nothing to tell
                out = self._tick(ticker, ts_ms, recv_ns)
                if isinstance(out, str):
                    problems.append(out)
                else:
                    ticks.append(out)
        if not ticks:
            return problems[0] if problems else "unknown_shape"
        for reason in problems:
            self._link.drop(reason, raw)
        return ticks

    def _tick(self, ticker: _Ticker, ts_ms: int, recv_ns: int) -> Tick | str:
        market = self._products.get(ticker.product_id)
        if market is None:
            return "unknown_symbol"
        try:
            price = float(ticker.price)
            bid = float(ticker.best_bid) if ticker.best_bid else None
            ask = float(ticker.best_ask) if ticker.best_ask else None
        except ValueError:
            return "bad_field"
        if not (price > 0.0 and math.isfinite(price)) or ts_ms <= 0:
            return "bad_field"
        m = market
        return Tick(VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv_ns, bid, ask)

    def _on_subscriptions(self, message: _Message) -> None:
        active: dict[str, list[str]] = {}
        for event in message.events:
            active.update(event.subscriptions or {})
        listed = set(active.get(self._protocol.channel, ()))
        wanted = self._protocol.configured
        covered = all(
            ident in listed or (f"{m.base}-USD" in listed and m.quote == "USDC")
            for ident, m in wanted.items()
        )
        if covered and "heartbeats" in active:
            self._link.subscribed()
