"""A simulated Kraken WebSocket v2 market-data endpoint on loopback (`/v2`).

Speaks the public protocol (see /work/shared/reference/exchange-feeds.md): a `status`
message on connect; `{"method": "subscribe", "params": {"channel": "ticker" | "trade",
"symbol": [...], "snapshot": bool}, "req_id": N}` answered once per symbol (`success`
true, or false with `error` for a pair not listed); then a snapshot (unless
`snapshot` is false: the ticker's current state, or the last 50 trades of the pair, oldest
first, each with its own time) and an update per symbol per step, with JSON numbers; the
ticker carries its `timestamp`, and no `last` for `untraded_symbols` (Kraken guarantees
`last` only for a pair traded in the past 24 hours; such pairs print no trades);
`{"channel": "heartbeat"}` every `heartbeat_interval_s` to subscribed connections; the
application ping `{"method": "ping", "req_id": N}` answered with a pong (not during a
stall). Faults: those of `SimulatedVenue`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from streams.simulator.venue import SimulatedVenue

__all__ = ["CHANNELS", "KrakenSimulator"]

log = logging.getLogger(__name__)

CHANNELS = ("ticker", "trade")
SNAPSHOT_TRADES = 50  # "The snapshot reflects the most recent 50 trades."
_encode = msgspec.json.Encoder().encode


def rfc3339_us(ms: int) -> str:
    """Epoch ms -> `2023-09-25T07:49:37.708000Z` (Kraken prints microseconds)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Client:
    ws: ServerConnection
    serial: int
    symbols: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})

    @property
    def subscribed(self) -> bool:
        return any(self.symbols.values())


class KrakenSimulator(SimulatedVenue):
    """Simulated Kraken v2 market data for unified `symbols` (e.g. 'BTC/USD', 'USDT/USD')."""

    name: ClassVar[str] = "kraken"

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 7,
        tick_interval_ms: float = 50.0,
        seconds_per_step: float = 60.0,
        volatility_scale: float = 1.0,
        *,
        heartbeat_interval_s: float = 1.0,
        untraded_symbols: Sequence[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(
            symbols, seed, tick_interval_ms, seconds_per_step, volatility_scale, **options
        )
        untraded = set(untraded_symbols)
        self._untraded = {i for i, x in enumerate(self.board.listings) if x.symbol in untraded}
        self._history: dict[int, deque[dict[str, Any]]] = {}  # listing -> recent trades
        self._step_ms = 0  # event time of the last step
        self._by_pair = {x.symbol: i for i, x in enumerate(self.board.listings)}
        self._heartbeat_s = heartbeat_interval_s
        self._clients: dict[ServerConnection, _Client] = {}
        self.subscribe_log: list[tuple[int, str, tuple[str, ...]]] = []  # (conn, channel, pairs)
        self.pings = 0
        self.snapshot_params: list[object] = []  # the `snapshot` of each subscribe (None: absent)

    @property
    def url(self) -> str:
        """The v2 endpoint, e.g. `ws://127.0.0.1:PORT/v2`."""
        return self._server.url + "/v2"

    # Connections and requests ------------------------------------------------------------

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path.rstrip("/") == "/v2":
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, "Not found: use /v2\n")

    async def _serve_client(self, ws: ServerConnection) -> None:
        client = _Client(ws, self._server.connections_total)
        self._clients[ws] = client
        try:
            status = {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": client.serial,
                        "system": "online",
                        "version": "2.0.10",
                    }
                ],
            }
            await ws.send(_encode(status), text=True)
            async for raw in ws:
                await self._server.wait_unstalled()
                for reply in self._answer(client, raw):
                    await ws.send(reply, text=True)
        except ConnectionClosed:
            pass
        finally:
            del self._clients[ws]
            self._update_streaming()

    def _answer(self, client: _Client, raw: str | bytes) -> list[bytes]:
        time_in = rfc3339_us(self._now_ms())
        try:
            request = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            request = None
        if not isinstance(request, dict):
            return [self._error("", None, "Malformed request", time_in)]
        method, req_id = request.get("method"), request.get("req_id")
        if method == "ping":
            self.pings += 1
            return [self._reply({"method": "pong", "req_id": req_id}, time_in)]
        if method not in ("subscribe", "unsubscribe"):
            return [self._error(str(method), req_id, "Method not found", time_in)]
        params = request.get("params")
        if not isinstance(params, dict) or params.get("channel") not in CHANNELS:
            return [self._error(method, req_id, "Channel not supported", time_in)]
        channel, pairs = params["channel"], params.get("symbol")
        if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
            return [self._error(method, req_id, "Field 'symbol' must be a list", time_in)]
        self.subscribe_log.append((client.serial, channel, tuple(pairs)))
        if method == "subscribe":
            self.snapshot_params.append(params.get("snapshot"))
        replies = []
        for pair in pairs:
            if pair not in self._by_pair:
                error = f"Currency pair not supported {pair}"
                replies.append(self._error(method, req_id, error, time_in, symbol=pair))
                continue
            result = {"channel": channel, "symbol": pair}
            if method == "subscribe":
                snapshot = params.get("snapshot", True) is not False
                result["snapshot"] = snapshot
                client.symbols[channel].add(pair)
            else:
                client.symbols[channel].discard(pair)
            message = {"method": method, "result": result, "success": True, "req_id": req_id}
            replies.append(self._reply(message, time_in))
            if method == "subscribe" and snapshot:
                replies.append(self._snapshot(channel, self._by_pair[pair]))
        self._update_streaming()
        return replies

    def _reply(self, message: dict[str, Any], time_in: str) -> bytes:
        if message.get("req_id") is None:
            message.pop("req_id", None)
        time_out = rfc3339_us(self._now_ms())
        return _encode(message | {"time_in": time_in, "time_out": time_out})

    def _error(self, method: str, req_id: Any, error: str, time_in: str, **extra: str) -> bytes:
        message = {"error": error, "method": method, "success": False, "req_id": req_id}
        return self._reply(message | extra, time_in)

    def _update_streaming(self) -> None:
        if any(c.subscribed for c in self._clients.values()):
            self._streaming.set()
        else:
            self._streaming.clear()

    # Market data ---------------------------------------------------------------------------

    def _time_ms(self) -> int:
        """The last step's event time (the clock is read once per step)."""
        return self._step_ms or self._now_ms()

    def _trade(self, i: int) -> dict[str, Any]:
        board, x = self.board, self.board.listings[i]
        return {
            "symbol": x.symbol,
            "side": "sell" if board.went_down(i) else "buy",
            "price": float(board.price_str(i)),
            "qty": float(board.qty_str(i)),
            "ord_type": "market",
            "trade_id": board.trade_id(i),
            "timestamp": rfc3339_us(self._time_ms()),
        }

    def _item(self, channel: str, i: int) -> dict[str, Any]:
        if channel == "trade":
            return self._trade(i)
        board, x = self.board, self.board.listings[i]
        price = float(board.price_str(i))
        _, high, low, volume, quote_volume = board.day_stats(i)
        bid, ask = board.book(i)
        qty, vol = float(board.qty_str(i)), float(volume)
        open_ = price / (1.0 + board.change_pct(i) / 100.0)
        item = {
            "symbol": x.symbol,
            "bid": float(bid),
            "bid_qty": qty,
            "ask": float(ask),
            "ask_qty": qty,
            "last": price,
            "volume": vol,
            "vwap": round(float(quote_volume) / vol, x.price_decimals) if vol else price,
            "low": float(low),
            "high": float(high),
            "change": round(price - open_, x.price_decimals),
            "change_pct": round(board.change_pct(i), 2),
            "timestamp": rfc3339_us(self._time_ms()),
        }
        if i in self._untraded:
            del item["last"]
        return item

    def _data(self, channel: str, kind: str, listings: list[int]) -> bytes:
        items = [self._item(channel, i) for i in listings]
        return _encode({"channel": channel, "type": kind, "data": items})

    def _snapshot(self, channel: str, i: int) -> bytes:
        """A ticker's current state, or the pair's last 50 trades (history, oldest first)."""
        if channel != "trade":
            return self._data(channel, "snapshot", [i])
        trades = list(self._history.get(i, ()))
        if not trades and i not in self._untraded:  # before the first step: invent a past
            now, newest = self._time_ms(), self._trade(i)
            for age in range(SNAPSHOT_TRADES, 0, -1):
                trade = dict(newest, timestamp=rfc3339_us(now - 1000 * age))
                trades.append(trade | {"trade_id": newest["trade_id"] - age})
        return _encode({"channel": channel, "type": "snapshot", "data": trades})

    def _record_trades(self) -> None:
        """Keep each pair's last 50 trades for trade snapshots."""
        for i in range(len(self.board.listings)):
            if i not in self._untraded:
                history = self._history.setdefault(i, deque(maxlen=SNAPSHOT_TRADES))
                history.append(self._trade(i))

    async def _step(self) -> None:
        self.board.step()
        self._step_ms = self._now_ms()
        self._record_trades()
        cache: dict[tuple[str, str], bytes] = {}
        for client in list(self._clients.values()):
            messages = []
            for channel, pairs in client.symbols.items():
                for pair in pairs:
                    if channel == "trade" and self._by_pair[pair] in self._untraded:
                        continue  # no trade today
                    message = cache.get((channel, pair))
                    if message is None:
                        listing = [self._by_pair[pair]]
                        message = cache[channel, pair] = self._data(channel, "update", listing)
                    messages.append(message)
            await self._send(client.ws, messages)

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._heartbeats()]

    async def _heartbeats(self) -> None:
        beat = _encode({"channel": "heartbeat"})
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self._server.wait_unstalled()
            targets = [c.ws for c in self._clients.values() if c.subscribed]
            broadcast(targets, beat, text=True)
