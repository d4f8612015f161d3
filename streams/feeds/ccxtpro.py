"""Any venue ccxt.pro supports: `watch_tickers` / `watch_trades`, normalized to Ticks.

Configured by exchange id (`exchange_id`, default the venue name) and unified symbols.
Markets are loaded once per feed (one REST call, retried with backoff), or injected
(`markets=`: no REST call at all, as the offline tests do). A `url` override points
every websocket URL of the exchange at that host, keeping each URL's path (or at the
override itself when it has a path), so ccxt can talk to a simulated venue.

ccxt reconnects a dropped socket on the next `watch_*` call; this feed adds what the
native feeds do: a silence watchdog (no data for `silence_timeout_s`: ccxt's sockets are
closed and reopened), jittered backoff between attempts, counters in `FeedHealth`, and
malformed messages counted instead of ignored or fatal. That needs a guard around the
exchange's `handle_message`: ccxt hands a frame it cannot decode as JSON to the venue
handler as a raw string, which the handler mostly ignores without a trace, and sometimes
chokes on: ccxt 4.5's binance handler tests `'a' in message` on the raw string, takes
text containing an "a" and a "b" for a book ticker and raises inside ccxt's receive
callback, and that connection's receive loop silently dies. The guard drops and counts
non-JSON text (`malformed_json`; plain "ping"/"pong" keepalive text is passed on) and
counts a handler that raises on a decoded message (`unknown_shape`) instead of letting it
kill the loop. What ccxt itself discards inside a decoded message is not visible here.
ccxt resolves one waiting watch per message, so `watch_tickers` returns only the first
ticker of a message that carries several (Coinbase's `ticker_batch`); the feed also
passes on the others from ccxt's ticker cache (`_with_cached`).

Tested against (tests/integration/test_ccxt_feed.py, ccxt 4.5 on loopback): ccxt's
`binance` client on the simulated Binance (tickers via `@miniTicker`, trades via
`@trade`), ccxt's `coinbase` client on the simulated Coinbase (tickers via
`ticker_batch`), and ccxt's `kraken` client on the simulated Kraken (ticker and trade).
Not tested: ccxt's coinbase trades (`market_trades`, a channel the simulator does not
serve) and every other exchange. Kraken: older ccxt versions (e.g. commit ed816e3, per
the reference) speak Kraken's v1 websocket (`wss://ws.kraken.com`); ccxt 4.5's ticker,
trade and book watchers use v2 (`publicV2`, `watch_multi_helper` in
`python/ccxt/pro/kraken.py`), other parts still v1. ccxt subscribes trades without
setting `snapshot`, so its kraken trades begin with up to 50 past trades, passed on as
ticks at their own (older) times: prefer the native Kraken feed, which keeps snapshots
out of the live ticks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from streams.errors import FeedError
from streams.feeds.backoff import Backoff
from streams.feeds.health import FeedHealth
from streams.feeds.interface import FeedConfig, FeedState, FeedStatus
from streams.feeds.symbols import Market, market_table
from streams.feeds.tickqueue import TickQueue
from streams.ticks import Tick, now_ns

__all__ = ["CHANNELS", "CcxtFeed", "point_ws_urls", "spot_markets"]

log = logging.getLogger(__name__)

CHANNELS: Final = ("tickers", "trades")
# Plain-text frames some venues use as keepalive (OKX answers "ping" with "pong").
_KEEPALIVE_TEXT: Final = frozenset({"ping", "pong"})


class _Silent(Exception):
    """No data within the silence timeout."""


class CcxtFeed:
    """A ccxt.pro venue as a `Feed`: `start()`, iterate `batches()`, `stop()`."""

    def __init__(
        self,
        config: FeedConfig,
        *,
        markets: Sequence[Mapping[str, Any]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.exchange_id = config.exchange_id or config.venue
        self.channel = config.channel or "tickers"
        if self.channel not in CHANNELS:
            raise FeedError(f"ccxt feed: channel {self.channel!r} is not one of {CHANNELS}")
        self._markets = market_table(config.venue, config.symbols, lambda b, q: f"{b}/{q}")
        self._symbols = list(self._markets)
        self._tickers_passed: dict[str, tuple[Any, ...]] = {}  # symbol -> last ticker passed on
        self._injected = [dict(m) for m in markets] if markets is not None else None
        self._health = FeedHealth(config.venue, kind="ccxt", exchange_id=self.exchange_id)
        self._queue = TickQueue(config.venue, config.queue_size)
        self._backoff = Backoff.from_config(config, rng)
        self._exchange: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_data = 0.0
        self._markets_loaded = False

    @property
    def status(self) -> FeedStatus:
        """Live counters and connection state."""
        return self._health.status

    @property
    def drop_samples(self) -> dict[str, list[bytes]]:
        """The last few raw messages dropped, per reason (truncated), for debugging."""
        return self._health.drop_samples

    async def start(self) -> None:
        """Create the ccxt exchange and start watching in the background (returns at once)."""
        if self._task is not None or self._queue.ended:
            raise FeedError(f"{self.config.venue} feed: start() called twice; create a new feed")
        import ccxt.pro  # deferred: importing ccxt takes a while and most runs never need it

        factory = getattr(ccxt.pro, self.exchange_id, None)
        if factory is None:
            raise FeedError(
                f"ccxt feed: ccxt.pro has no exchange {self.exchange_id!r} "
                f"(e.g. {', '.join(ccxt.pro.exchanges[:5])}, ...)"
            )
        exchange = factory({"enableRateLimit": True})
        if self.config.url:
            point_ws_urls(exchange.urls, self.config.url)
        if self._injected is not None:
            exchange.set_markets(self._injected)
            self._markets_loaded = True
        self._guard(exchange)
        self._exchange = exchange
        self._task = asyncio.create_task(self._run(), name=f"feed-{self.config.venue}")

    async def stop(self) -> None:
        """Cancel the watchers, close ccxt's connections, end `batches()`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        if self._exchange is not None:
            await self._exchange.close()
        self._queue.finish(None)
        self._health.stopped()

    def batches(self) -> AsyncIterator[list[Tick]]:
        """Ticks in arrival order, in batches (an async iterator of lists of Ticks)."""
        return self._queue.batches()

    # The watch loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        try:
            while True:
                if attempt:
                    self._health.reconnect()
                attempt += 1
                self._health.state(FeedState.CONNECTING)
                started = asyncio.get_running_loop().time()
                reason = await self._attempt()
                await self._exchange.close_ws_clients()
                await self._back_off(reason, started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a configuration error: stop loudly
            log.exception("%s feed crashed", self.config.venue, extra={"venue": self.config.venue})
            self._health.error(repr(exc))
            self._health.state(FeedState.STOPPED)
            self._queue.finish(exc)

    async def _attempt(self) -> str:
        """Load markets (once) and watch until a failure; returns what ended it."""
        import ccxt.pro

        reason = "ended"
        try:
            await self._load_markets()
            await self._session()
        except* ccxt.pro.ExchangeError as refused:  # a bad symbol, a refused subscription...
            for exc in refused.exceptions:
                self._health.drop("error_reply", str(exc))
            reason = f"{self.exchange_id} refused: {refused.exceptions[0]}"
        except* (ccxt.pro.NetworkError, OSError, TimeoutError, _Silent) as lost:
            if any(isinstance(exc, _Silent) for exc in lost.exceptions):
                self._health.stall()
            reason = "; ".join(str(e) or type(e).__name__ for e in lost.exceptions)
        return reason

    async def _load_markets(self) -> None:
        if not self._markets_loaded:
            await self._exchange.load_markets()
            self._markets_loaded = True
        unknown = [s for s in self._symbols if s not in self._exchange.markets]
        if unknown:
            raise FeedError(f"ccxt feed: {self.exchange_id} does not list {', '.join(unknown)}")

    async def _back_off(self, reason: str, started: float) -> None:
        loop = asyncio.get_running_loop()
        healthy = loop.time() - started if self.status.state is FeedState.SUBSCRIBED else 0.0
        self._backoff.connection_ended(healthy)
        delay = self._backoff.next_delay()
        self._health.flush()
        self._health.state(FeedState.BACKOFF)
        self._health.error(reason)
        log.warning(
            "%s (ccxt %s) watch ended (%s); retrying in %.3fs",
            self.config.venue,
            self.exchange_id,
            reason,
            delay,
            extra={"venue": self.config.venue, "reason": reason, "delay_s": round(delay, 3)},
        )
        await asyncio.sleep(delay)

    async def _session(self) -> None:
        """Watch until something fails; every watcher shares the silence watchdog."""
        has = self._exchange.has
        self._last_data = asyncio.get_running_loop().time()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch_silence())
            multi = "watchTickers" if self.channel == "tickers" else "watchTradesForSymbols"
            if has.get(multi):
                group.create_task(self._watch(self._symbols))
            else:
                for symbol in self._symbols:
                    group.create_task(self._watch([symbol]))

    async def _watch(self, symbols: list[str]) -> None:
        exchange, tickers = self._exchange, self.channel == "tickers"
        while True:
            if tickers:
                result = await (
                    exchange.watch_tickers(symbols)
                    if len(symbols) > 1 or exchange.has.get("watchTickers")
                    else exchange.watch_ticker(symbols[0])
                )
                items = list(result.values()) if isinstance(result, dict) else [result]
                items = self._with_cached(items, symbols)
            elif len(symbols) > 1 or exchange.has.get("watchTradesForSymbols"):
                items = await exchange.watch_trades_for_symbols(symbols)
            else:
                items = await exchange.watch_trades(symbols[0])
            await self._deliver(items, "last" if tickers else "price")

    def _with_cached(
        self, items: list[Mapping[str, Any]], symbols: list[str]
    ) -> list[Mapping[str, Any]]:
        """`items` plus the tickers ccxt cached for other symbols since they were last passed on.

        ccxt resolves one waiting watch per message, so from a message carrying several
        symbols' tickers (Coinbase's `ticker_batch`) `watch_tickers` returns only the first;
        the others are only in `exchange.tickers`.
        """
        cache = getattr(self._exchange, "tickers", None) or {}
        seen = self._tickers_passed
        out = list(items)
        returned = {str(item.get("symbol")) for item in items}
        for symbol in symbols:
            cached = cache.get(symbol)
            if symbol in returned or not isinstance(cached, Mapping):
                continue
            if seen.get(symbol) != _ticker_key(cached):
                out.append(cached)
        for item in out:
            seen[str(item.get("symbol"))] = _ticker_key(item)
        return out

    async def _deliver(self, items: Sequence[Mapping[str, Any]], field: str) -> None:
        self._last_data = asyncio.get_running_loop().time()
        if self.status.state is not FeedState.SUBSCRIBED:
            self._health.connected()
        recv = now_ns()
        ticks: list[Tick] = []
        for item in items:
            out = self._tick(item, field, recv)
            if isinstance(out, str):
                self._health.drop(out, repr(dict(item, info=None))[:512])
            else:
                ticks.append(out)
        if ticks:
            self._health.record(ticks)
            await self._queue.put(ticks)

    def _tick(self, item: Mapping[str, Any], field: str, recv_ns: int) -> Tick | str:
        market: Market | None = self._markets.get(str(item.get("symbol")))
        if market is None:
            return "unknown_symbol"
        price, ts = item.get(field), item.get("timestamp")
        if field == "last" and price is None:
            price = item.get("close")
        if not isinstance(price, int | float) or not (price > 0 and math.isfinite(price)):
            return "bad_field"
        ts_ms = int(ts) if isinstance(ts, int | float) and ts > 0 else recv_ns // 1_000_000
        bid, ask = item.get("bid"), item.get("ask")
        return Tick(
            self.config.venue,
            market.symbol,
            market.base,
            market.quote,
            float(price),
            ts_ms,
            recv_ns,
            float(bid) if isinstance(bid, int | float) else None,
            float(ask) if isinstance(ask, int | float) else None,
        )

    async def _watch_silence(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.config.silence_timeout_s
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            self._health.flush()
            now = loop.time()
            if self._queue.blocked:
                self._last_data = now
                continue
            quiet = now - max(self._last_data, self._queue.unblocked_at)
            if quiet > limit:
                raise _Silent(f"no data for {quiet:.1f}s (limit {limit}s)")

    def _guard(self, exchange: Any) -> None:
        """Count, instead of passing on or dying on, a message ccxt cannot use."""
        handle = exchange.handle_message
        health = self._health

        def guarded(client: Any, message: Any) -> Any:
            if isinstance(message, str) and message.strip().lower() not in _KEEPALIVE_TEXT:
                health.drop("malformed_json", message)  # ccxt could not decode it as JSON
                return None
            try:
                return handle(client, message)
            except Exception:
                health.drop("unknown_shape", repr(message))
                return None

        exchange.handle_message = guarded


def point_ws_urls(urls: dict[str, Any], override: str) -> None:
    """Point every websocket URL in a ccxt `urls` dict at `override` (in place).

    Each URL keeps its own path (ccxt appends stream ids to it) unless `override` has a
    path of its own, which then replaces them all.
    """
    target = urlsplit(override)
    if target.scheme not in ("ws", "wss"):
        raise FeedError(f"ccxt feed: url {override!r} must start with ws:// or wss://")

    def repoint(url: str) -> str:
        if target.path.strip("/"):
            return override
        parts = urlsplit(url)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return repoint(node) if node.startswith(("ws://", "wss://")) else node
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    api = urls.get("api")
    if isinstance(api, dict) and "ws" in api:
        api["ws"] = walk(api["ws"])


def _ticker_key(ticker: Mapping[str, Any]) -> tuple[Any, ...]:
    """What tells one ccxt ticker of a symbol from the next."""
    return (ticker.get("timestamp"), ticker.get("datetime"), ticker.get("last"))


def spot_markets(symbols: Sequence[str], id_format: str = "{base}{quote}") -> list[dict[str, Any]]:
    """Minimal ccxt spot market structures for `symbols` (to inject instead of loading).

    `id_format` spells the exchange's market id (Binance: `{base}{quote}`, `BTCUSDT`).
    """
    out = []
    for market in market_table("ccxt", symbols, lambda b, q: f"{b}/{q}").values():
        ident = id_format.format(base=market.base, quote=market.quote)
        none = {"min": None, "max": None}
        out.append(
            {
                "id": ident,
                "lowercaseId": ident.lower(),
                "symbol": market.symbol,
                "base": market.base,
                "quote": market.quote,
                "baseId": market.base,
                "quoteId": market.quote,
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "contract": False,
                "linear": None,
                "inverse": None,
                "active": True,
                "precision": {"amount": 1e-8, "price": 1e-8},
                "limits": {"amount": none, "price": none, "cost": none},
                "info": {},
            }
        )
    return out
