"""Coinbase Advanced Trade market data (`ticker` or `ticker_batch`, plus `heartbeats`).

Endpoint `wss://advanced-trade-ws.coinbase.com`; the subscriptions must be sent within
5 seconds of connecting: `{"type": "subscribe", "product_ids": [...], "channel":
"ticker"}` and `{"type": "subscribe", "channel": "heartbeats"}` (a message a second keeps
quiet connections open and feeds the silence watchdog). The venue answers each subscribe
with a `subscriptions` message listing the full current set, channel to product ids
(`{"subscriptions": {"ticker": ["BTC-USD"]}}` inside `events`); the feed is subscribed
once that set covers its products, or at the first data message of its channel, whichever
comes first: no particular key (such as `heartbeats`) is required. Every message carries
`sequence_num`; whether it counts per connection or per channel is not documented, so
the feed follows per connection and switches to per channel when the numbers show it (a
number going back that continues its channel's own count). A jump is a gap (counted, with
the messages missed); no message is ever dropped for its sequence number. Coinbase
sometimes sends a ticker whose fields are all empty strings: skipped and counted as
`empty_ticker`, not as malformed. Errors arrive as `{"type": "error", "message": ...}`.
Prices are strings; the tick time is the message `timestamp` (RFC 3339, ns).
Coinbase serves `-USDC` products from the `-USD` book on public channels, so a `BTC-USD`
ticker received for a configured `BTC/USDC` is passed on as `BTC/USD` (what it is).
Sources: /work/shared/reference/exchange-feeds.md; docs.cdp.coinbase.com Advanced Trade
WebSocket overview and channels; ccxt `pro/coinbase.py`.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

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
    subscriptions: dict[str, list[str] | None] | None = None


class _LegacyChannel(msgspec.Struct):
    """`{"name": "ticker", "product_ids": [...]}` of the Exchange API's subscriptions shape."""

    name: str = ""
    product_ids: list[str] = []


class _Message(msgspec.Struct):
    channel: str = ""
    timestamp: str = ""
    sequence_num: int = -1
    events: list[_Event] = []
    type: str = ""  # "error" on error messages; "subscriptions" in the legacy shape
    message: str = ""
    channels: list[_LegacyChannel | str] | None = None  # the legacy subscriptions shape


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
        self._last_seq: int | None = None  # per connection
        self._channel_seq: dict[str, int] = {}  # per channel
        self._per_channel = False  # the numbers showed a per-channel count
        self._subscribed = False

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
        channel = message.channel
        if message.sequence_num >= 0:
            self._sequence(channel, message.sequence_num)
        if channel in CHANNELS:
            if channel == self._protocol.channel and not self._subscribed:
                self._mark_subscribed()  # data flows: the subscription is live
            return self._tickers(message, raw, recv_ns)
        if channel == "heartbeats":
            return None
        if channel == "subscriptions" or message.type == "subscriptions":
            self._on_subscriptions(message)
            return None
        if message.type == "error":
            self._link.refused(f"coinbase error: {message.message}")
            return "error_reply"
        return "unknown_shape"

    def _sequence(self, channel: str, seq: int) -> None:
        """Follow `seq` (per connection, or per channel once the numbers show that) and count
        a jump as a gap. Never a reason to drop: the scope is not documented."""
        own = self._channel_seq.get(channel)
        if not self._per_channel:
            last = self._last_seq
            if last is not None and seq <= last and (own is None or seq == own + 1):
                self._per_channel = True
                log.info(
                    "coinbase numbers messages per channel on this connection",
                    extra={"venue": VENUE, "channel": channel, "sequence_num": seq},
                )
        last = own if self._per_channel else self._last_seq
        if last is not None and seq > last + 1:
            self._link.gap(seq - last - 1)
        self._last_seq = seq
        self._channel_seq[channel] = seq

    def _tickers(self, message: _Message, raw: bytes, recv_ns: int) -> list[Tick] | str:
        try:
            ts_ms = parse_ts(message.timestamp)
        except TickFormatError:
            return "bad_field"
        ticks: list[Tick] = []
        problems: list[str] = []
        empty = 0
        for event in message.events:
            for ticker in event.tickers or ():
                if not ticker.product_id and not ticker.price:
                    empty += 1  # Coinbase sometimes sends an all-empty ticker: nothing to tell
                    continue
                out = self._tick(ticker, ts_ms, recv_ns)
                if isinstance(out, str):
                    problems.append(out)
                else:
                    ticks.append(out)
        if not ticks:
            if problems:
                return problems[0]
            return "empty_ticker" if empty else "unknown_shape"
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
        return Tick(VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv_ns, bid, ask, ticker.price)

    def _on_subscriptions(self, message: _Message) -> None:
        """The venue's current subscription set; subscribed once it covers every product."""
        listed: set[str] = set()
        for event in message.events:
            listed.update((event.subscriptions or {}).get(self._protocol.channel) or ())
        for entry in message.channels or ():
            if isinstance(entry, _LegacyChannel) and entry.name == self._protocol.channel:
                listed.update(entry.product_ids)
        wanted = self._protocol.configured
        covered = all(
            ident in listed or (f"{m.base}-USD" in listed and m.quote == "USDC")
            for ident, m in wanted.items()
        )
        if covered:
            self._mark_subscribed()

    def _mark_subscribed(self) -> None:
        self._subscribed = True
        self._link.subscribed()
