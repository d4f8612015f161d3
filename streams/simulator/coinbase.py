"""A simulated Coinbase Advanced Trade market-data websocket on loopback.

Speaks the public protocol (see /work/shared/reference/exchange-feeds.md): a client must
send `{"type": "subscribe", "product_ids": [...], "channel": ...}` within
`subscribe_timeout_s` of connecting or is closed; channels `ticker` (a snapshot, then an
update per product per step), `ticker_batch` (every `batch_interval_s`, without best
bid/ask) and `heartbeats` (every `heartbeat_interval_s`, `heartbeat_counter` counting
up); acknowledgements on the `subscriptions` channel in the documented shape, one per
subscribe, listing the full current set, channel to product ids (`{"subscriptions":
{"ticker": ["BTC-USD"]}}`; the heartbeats channel, which has no products, is not listed;
`ack_subscriptions=False` sends no acknowledgement at all); errors as `{"type": "error",
"message": ...}`. Every `empty_ticker_every` steps a subscriber also gets a ticker whose
fields are all empty strings, a shape Coinbase really sends (ccxt `handle_tickers`).
Every message carries `sequence_num`, one more each message, counted per connection or,
with `sequence_scope="channel"`, per channel (Coinbase does not document which), unless
`skip_sequence()` is injecting a gap. Faults: those of `SimulatedVenue`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from streams.errors import SimulatorError
from streams.simulator.venue import SimulatedVenue

__all__ = ["CHANNELS", "CoinbaseSimulator"]

log = logging.getLogger(__name__)

CHANNELS = ("ticker", "ticker_batch", "heartbeats")
_encode = msgspec.json.Encoder().encode
# An all-empty ticker as Coinbase sends it now and then (ccxt pro/coinbase.py handle_tickers).
_EMPTY_TICKER = _encode(
    [
        {
            "type": "snapshot",
            "tickers": [
                {
                    "type": "ticker",
                    "product_id": "",
                    "price": "",
                    "volume_24_h": "",
                    "low_24_h": "",
                    "high_24_h": "",
                    "low_52_w": "",
                    "high_52_w": "",
                    "price_percent_chg_24_h": "",
                }
            ],
        }
    ]
)


def rfc3339_ns(ms: int) -> str:
    """Epoch ms -> `2023-02-09T20:30:37.167000000Z` (Coinbase prints nanoseconds)."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}000000Z"


@dataclass(slots=True)
class _Client:
    ws: ServerConnection
    serial: int
    per_channel: bool = False  # sequence numbers counted per channel, not per connection
    sequence: dict[str, int] = field(default_factory=dict)  # scope ("" or channel) -> next
    skip: int = 0  # extra sequence numbers to skip on the next message
    heartbeats: bool = False
    heartbeat_counter: int = 0
    products: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})

    def envelope(self, channel: str, timestamp: str, events: bytes) -> bytes:
        """The common wrapper, with this connection's next sequence number."""
        scope = channel if self.per_channel else ""
        seq = self.sequence.get(scope, 0) + self.skip
        self.skip = 0
        self.sequence[scope] = seq + 1
        head = f'{{"channel":"{channel}","client_id":"","timestamp":"{timestamp}","sequence_num":'
        return head.encode() + str(seq).encode() + b',"events":' + events + b"}"


class CoinbaseSimulator(SimulatedVenue):
    """Simulated Coinbase market data for unified `symbols` (e.g. 'BTC/USD', 'USDT/USD')."""

    name: ClassVar[str] = "coinbase"

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 7,
        tick_interval_ms: float = 50.0,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
        *,
        subscribe_timeout_s: float = 5.0,
        heartbeat_interval_s: float = 1.0,
        batch_interval_s: float = 5.0,
        sequence_scope: str = "connection",
        ack_subscriptions: bool = True,
        empty_ticker_every: int = 97,
        **options: Any,
    ) -> None:
        super().__init__(
            symbols, seed, tick_interval_ms, seconds_per_step, volatility_scale, **options
        )
        self._by_product = {f"{x.base}-{x.quote}": i for i, x in enumerate(self.board.listings)}
        self._subscribe_timeout_s = subscribe_timeout_s
        self._heartbeat_s = heartbeat_interval_s
        self._batch_every = max(1, round(batch_interval_s / max(self._interval_s, 1e-3)))
        if sequence_scope not in ("connection", "channel"):
            raise SimulatorError("sequence_scope must be 'connection' or 'channel'")
        self._per_channel = sequence_scope == "channel"
        self._ack = ack_subscriptions
        self._empty_every = empty_ticker_every
        self.empty_tickers_sent = 0
        self._clients: dict[ServerConnection, _Client] = {}
        self.subscribe_log: list[tuple[int, str, tuple[str, ...]]] = []  # (conn, channel, ids)

    @property
    def products(self) -> list[str]:
        """The product ids this venue lists (`BTC-USD`)."""
        return list(self._by_product)

    def skip_sequence(self, count: int = 1) -> int:
        """Skip `count` sequence numbers on every connection's next message; returns how many."""
        for client in self._clients.values():
            client.skip += count
        return len(self._clients)

    # Connections and requests ------------------------------------------------------------

    async def _serve_client(self, ws: ServerConnection) -> None:
        client = _Client(ws, self._server.connections_total, per_channel=self._per_channel)
        self._clients[ws] = client
        try:
            try:
                first = await asyncio.wait_for(ws.recv(), self._subscribe_timeout_s)
            except TimeoutError:
                await ws.close(1008, "no subscribe message received in time")
                return
            await self._request(client, first)
            async for raw in ws:
                await self._request(client, raw)
        except ConnectionClosed:
            pass
        finally:
            del self._clients[ws]
            self._update_streaming()

    async def _request(self, client: _Client, raw: str | bytes) -> None:
        await self._server.wait_unstalled()
        now = rfc3339_ns(self._now_ms())
        try:
            kind, channel, ids = self._parse(raw)
        except ValueError as exc:
            await client.ws.send(_encode({"type": "error", "message": str(exc)}), text=True)
            return
        self.subscribe_log.append((client.serial, channel, tuple(ids)))
        new: list[str] = []
        if channel == "heartbeats":
            client.heartbeats = kind == "subscribe"
        elif kind == "subscribe":
            new = [p for p in ids if p not in client.products[channel]]
            client.products[channel].update(ids)
        else:
            client.products[channel].difference_update(ids)
        self._update_streaming()
        if self._ack:
            active = {c: sorted(p) for c, p in client.products.items() if p}
            events = _encode([{"subscriptions": active}])
            await client.ws.send(client.envelope("subscriptions", now, events), text=True)
        if new and channel == "ticker":
            tickers = [self._ticker(self._by_product[p], book=True) for p in new]
            events = b'[{"type":"snapshot","tickers":[' + b",".join(tickers) + b"]}]"
            await client.ws.send(client.envelope("ticker", now, events), text=True)

    def _parse(self, raw: str | bytes) -> tuple[str, str, list[str]]:
        try:
            request = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise ValueError("malformed JSON") from None
        if not isinstance(request, dict) or request.get("type") not in ("subscribe", "unsubscribe"):
            raise ValueError("type must be subscribe or unsubscribe")
        channel = request.get("channel")
        if channel not in CHANNELS:
            raise ValueError(f"Failed to subscribe: unsupported channel {channel!r}")
        ids = request.get("product_ids", [])
        if not isinstance(ids, list) or not all(isinstance(p, str) for p in ids):
            raise ValueError("product_ids must be a list of strings")
        if channel != "heartbeats":
            unknown = [p for p in ids if p not in self._by_product]
            if unknown or not ids:
                raise ValueError(f"Failed to subscribe: unknown product_ids {unknown or ids}")
        return str(request["type"]), str(channel), ids

    def _update_streaming(self) -> None:
        clients = self._clients.values()
        if any(c.products["ticker"] or c.products["ticker_batch"] for c in clients):
            self._streaming.set()
        else:
            self._streaming.clear()

    # Market data ---------------------------------------------------------------------------

    def _ticker(self, i: int, *, book: bool) -> bytes:
        board, x = self.board, self.board.listings[i]
        _, high, low, volume, _ = board.day_stats(i)
        ticker: dict[str, str] = {
            "type": "ticker",
            "product_id": f"{x.base}-{x.quote}",
            "price": board.price_str(i),
            "volume_24_h": volume,
            "low_24_h": low,
            "high_24_h": high,
            "low_52_w": low,
            "high_52_w": high,
            "price_percent_chg_24_h": f"{board.change_pct(i):.8f}",
        }
        if book:
            bid, ask = board.book(i)
            qty = board.qty_str(i)
            ticker |= {"best_bid": bid, "best_bid_quantity": qty}
            ticker |= {"best_ask": ask, "best_ask_quantity": qty}
        return _encode(ticker)

    async def _step(self) -> None:
        self.board.step()
        now = rfc3339_ns(self._now_ms())
        batch = self.board.steps % self._batch_every == 0
        updates: dict[str, bytes] = {}
        for client in list(self._clients.values()):
            messages = []
            for product in client.products["ticker"]:
                events = updates.get(product)
                if events is None:
                    ticker = self._ticker(self._by_product[product], book=True)
                    events = updates[product] = b'[{"type":"update","tickers":[' + ticker + b"]}]"
                messages.append(client.envelope("ticker", now, events))
            if self._empty_every and self.board.steps % self._empty_every == 0:
                for channel in ("ticker", "ticker_batch"):
                    if client.products[channel]:
                        messages.append(client.envelope(channel, now, _EMPTY_TICKER))
                        self.empty_tickers_sent += 1
            if batch and client.products["ticker_batch"]:
                ids = sorted(client.products["ticker_batch"])
                tickers = b",".join(self._ticker(self._by_product[p], book=False) for p in ids)
                events = b'[{"type":"update","tickers":[' + tickers + b"]}]"
                messages.append(client.envelope("ticker_batch", now, events))
            await self._send(client.ws, messages)

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._heartbeats()]

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self._server.wait_unstalled()
            ms = self._now_ms()
            now = rfc3339_ns(ms)
            current = rfc3339_ns(ms).replace("T", " ").replace("Z", " +0000 UTC")
            for client in list(self._clients.values()):
                if not client.heartbeats:
                    continue
                client.heartbeat_counter += 1
                event = {"current_time": current, "heartbeat_counter": client.heartbeat_counter}
                await self._send(client.ws, [client.envelope("heartbeats", now, _encode([event]))])
