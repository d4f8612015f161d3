"""Binance spot trades over the public market-data websocket, normalized to Ticks.

One connection to `<url>/stream` (the combined-stream envelope), `SUBSCRIBE` requests
for `<id>@trade` (or `@aggTrade`) of every configured symbol (at most 200 streams a
request and 4 requests a second: Binance allows 5 incoming messages a second, pongs
included, and 1024 streams a connection). Each acknowledgement is checked; a refusal is
counted and logged. Binance answers its ping frames itself (the websockets library
pongs). Binance closes every connection after 24 hours, so the feed rolls over at 23
hours (`max_connection_age_s`): the new connection is subscribed before the old one is
closed and trades are deduplicated by trade id, so the rollover loses and doubles
nothing. A `serverShutdown` notice starts the rollover at once. Reconnects, silence and
drops are the engine's (`socket_feed.SocketFeed`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Final

import msgspec
from websockets.asyncio.client import ClientConnection

from streams.errors import FeedError
from streams.feeds.binance_wire import Reply, ServerShutdown, decode_message, markets
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
REQUESTS_PER_S: Final = 4.0  # under Binance's 5 incoming messages/s, leaving room for pongs
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

    async def subscribe(self, ws: ClientConnection) -> None:
        streams, size, ids = self._protocol.streams, SUBSCRIBE_CHUNK, self._protocol._ids
        chunks = {next(ids): streams[i : i + size] for i in range(0, len(streams), size)}
        self._pending.update(chunks)  # all of them: subscribed waits for the last ack
        for n, (request_id, chunk) in enumerate(chunks.items()):
            if n:
                await asyncio.sleep(1.0 / REQUESTS_PER_S)
            request = {"method": "SUBSCRIBE", "params": chunk, "id": request_id}
            await ws.send(msgspec.json.encode(request), text=True)

    async def keepalive(self, ws: ClientConnection) -> None:
        """Binance pings; the websockets library answers. Nothing to do."""

    def handle(self, raw: bytes, recv_ns: int) -> list[Tick] | str | None:
        out = decode_message(raw, self._markets, recv_ns)
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
    """The combined-stream endpoint for a base URL (`.../ws` and `.../stream` accepted too)."""
    if not url.startswith(("ws://", "wss://")):
        raise FeedError(f"binance feed: url {url!r} must start with ws:// or wss://")
    url = url.rstrip("/")
    if url.endswith("/stream"):
        return url
    if url.endswith("/ws"):
        url = url[: -len("/ws")]
    return url + "/stream"
