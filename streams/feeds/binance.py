"""Binance spot trades over the public market-data websocket, normalized to Ticks.

One connection to `<url>/stream` (the combined-stream envelope; a query string such as
`?timeUnit=MICROSECOND` is kept, and microsecond times are read as such), `SUBSCRIBE`
requests for `<id>@trade` (or `@aggTrade`) of every configured symbol (at most 200
streams a request, 1024 a connection). Binance allows 5 incoming messages a second per
connection and counts pings, pongs and requests alike: the feed sends no ping frames of
its own, and paces its requests by a sliding-window budget that also counts the pong
answering each of Binance's pings (every 20 s), keeping a slot free for the next one, so
the connection stays under the limit at any stream count. Each acknowledgement is
checked; a refusal is counted and logged. Binance sends no heartbeat messages: its ping
frames prove a quiet connection alive (the engine's silence watchdog counts every
frame). Binance closes every connection after 24 hours, so the feed rolls over at 23
hours (`max_connection_age_s`): the new connection is subscribed before the old one is
closed and trades are deduplicated by trade id, so the rollover loses and doubles
nothing. A `serverShutdown` notice starts the rollover at once. Reconnects, silence and
drops are the engine's (`socket_feed.SocketFeed`).
"""

from __future__ import annotations

import itertools
import random
from typing import Final
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgspec

from streams.errors import FeedError
from streams.feeds.binance_wire import Reply, ServerShutdown, decode_message, markets
from streams.feeds.connection import FeedConnection
from streams.feeds.interface import FeedConfig
from streams.feeds.session import SessionLink
from streams.feeds.socket_feed import SocketFeed
from streams.feeds.symbols import Market
from streams.ticks import Tick

__all__ = ["DEFAULT_MAX_AGE_S", "DEFAULT_URL", "BinanceFeed", "BinanceProtocol"]

DEFAULT_URL: Final = "wss://stream.binance.com:9443"
DEFAULT_MAX_AGE_S: Final = 23 * 3600.0  # Binance closes a connection after 24 hours
MAX_STREAMS: Final = 1024  # per connection
SUBSCRIBE_CHUNK: Final = 200  # streams per SUBSCRIBE request
CONTROL_LIMIT: Final = 5  # incoming messages a second per connection, pongs included
CHANNELS: Final = ("trade", "aggTrade")


class BinanceFeed(SocketFeed):
    """The Binance spot trade feed (see the module docstring); implements `Feed`."""

    def __init__(self, config: FeedConfig, *, rng: random.Random | None = None) -> None:
        super().__init__(
            config, BinanceProtocol(config), default_max_age_s=DEFAULT_MAX_AGE_S, rng=rng
        )


class BinanceProtocol:
    """Where to connect and what to subscribe, for one Binance feed."""

    def __init__(self, config: FeedConfig) -> None:
        self.markets = markets(config.symbols)
        if len(self.markets) > MAX_STREAMS:
            raise FeedError(
                f"binance feed: {len(self.markets)} symbols, but a connection carries at most "
                f"{MAX_STREAMS} streams; split them over several [[feeds]] entries"
            )
        channel = config.channel or "trade"
        if channel not in CHANNELS:
            raise FeedError(f"binance feed: channel {channel!r} is not one of {CHANNELS}")
        self.streams = [f"{ident.lower()}@{channel}" for ident in self.markets]
        self.endpoint = _stream_endpoint(config.url or DEFAULT_URL)
        self.time_divisor = 1000 if _microseconds(self.endpoint) else 1
        self.client_ping_interval_s: float | None = None  # Binance pings; ours would count
        self.control_limit: int | None = CONTROL_LIMIT
        self._ids = itertools.count(1)

    def session(self, link: SessionLink) -> BinanceSession:
        """The state of one new connection."""
        return BinanceSession(self, link)


class BinanceSession:
    """One Binance connection: chunked SUBSCRIBEs, their acks, trades (deduped in a rollover)."""

    def __init__(self, protocol: BinanceProtocol, link: SessionLink) -> None:
        self._protocol = protocol
        self._link = link
        self._markets: dict[str, Market] = protocol.markets
        self._pending: dict[int, list[str]] = {}
        self._acked = 0

    async def subscribe(self, ws: FeedConnection) -> None:
        streams, size, ids = self._protocol.streams, SUBSCRIBE_CHUNK, self._protocol._ids
        chunks = {next(ids): streams[i : i + size] for i in range(0, len(streams), size)}
        self._pending.update(chunks)  # all of them: subscribed waits for the last ack
        for request_id, chunk in chunks.items():
            await ws.control.acquire()  # within Binance's 5 messages/s, pongs counted
            request = {"method": "SUBSCRIBE", "params": chunk, "id": request_id}
            await ws.send(msgspec.json.encode(request), text=True)

    async def keepalive(self, ws: FeedConnection) -> None:
        """Binance pings; the websockets library answers (each pong counted in the budget)."""

    def handle(self, raw: bytes, recv_ns: int) -> list[Tick] | str | None:
        out = decode_message(raw, self._markets, recv_ns, self._protocol.time_divisor)
        if type(out) is tuple:
            tick, trade_id = out
            link = self._link
            overlap = link.overlap
            if overlap is not None and not overlap.admit(link.serial, tick, trade_id):
                return None
            return [tick]
        if isinstance(out, Reply):
            return self._on_reply(out)
        if isinstance(out, ServerShutdown):
            self._link.replace_soon("the venue announced a server shutdown")
            return None
        return out  # type: ignore[return-value]

    def _on_reply(self, reply: Reply) -> str | None:
        chunk = self._pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        outcome: str | None = None
        if reply.error is not None:
            self._link.refused(f"binance refused request {reply.id}: {reply.error.msg}")
            outcome = "error_reply"
        elif chunk is not None:
            self._acked += 1
        if not self._pending and self._acked:
            self._link.subscribed()
        return outcome


def _stream_endpoint(url: str) -> str:
    """The combined-stream endpoint for a base URL (`.../ws` and `.../stream` accepted too).

    A query string (e.g. `?timeUnit=MICROSECOND`) is kept as it is.
    """
    if not url.startswith(("ws://", "wss://")):
        raise FeedError(f"binance feed: url {url!r} must start with ws:// or wss://")
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[: -len("/ws")]
    if not path.endswith("/stream"):
        path += "/stream"
    return urlunsplit(parts._replace(path=path))


def _microseconds(endpoint: str) -> bool:
    """True when the URL asks Binance for microsecond times (`timeUnit=MICROSECOND`)."""
    query = parse_qs(urlsplit(endpoint).query)
    units = {value.upper() for value in query.get("timeUnit", [])}
    if units - {"MICROSECOND", "MILLISECOND"}:
        raise FeedError(
            f"binance feed: timeUnit {sorted(units)} in {endpoint!r} is not MICROSECOND or "
            "MILLISECOND"
        )
    return "MICROSECOND" in units
