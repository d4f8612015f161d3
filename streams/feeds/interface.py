"""The feed interface: one small client per venue, the engine never knows which.

A feed is started, yields Ticks (in batches, one per websocket message or less), and is
stopped. It reconnects by itself; malformed messages are counted and dropped, never
raised. `status()` is what the status line and health metrics show.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from streams.ticks import Tick


class FeedState(StrEnum):
    """Connection state of a feed, as shown in status and metrics."""

    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class FeedStatus:
    """Running counters of one feed (mutable: owned and updated by the feed).

    Times are wall-clock ns since the epoch (0: never). `symbol_last_tick_ns` holds the
    last tick's receive time per unified symbol; a symbol absent from it never ticked.
    """

    venue: str
    state: FeedState = FeedState.IDLE
    ticks: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped: dict[str, int] = field(default_factory=dict)  # known empty shapes: reason -> count
    reconnects: int = 0
    gaps: int = 0  # sequence gaps detected (Coinbase sequence_num jumps)
    last_tick_ns: int = 0
    last_error: str = ""
    kind: str = "native"  # "native" | "ccxt"
    exchange_id: str = ""  # the ccxt exchange id of a ccxt feed
    symbol_last_tick_ns: dict[str, int] = field(default_factory=dict)
    missed_messages: int = 0  # messages lost in those gaps
    stalls: int = 0  # connections given up as silent (no message, heartbeat or pong in time)
    rollovers: int = 0  # planned connection replacements (Binance's 24-hour limit)
    duplicates: int = 0  # ticks seen on both connections during a rollover, passed on once
    connected_since_ns: int = 0  # when the current connection was subscribed (0: none)

    def connection_age_s(self, now_ns: int | None = None) -> float:
        """Seconds since the current connection was subscribed (0.0 when not connected)."""
        if not self.connected_since_ns or self.state is not FeedState.SUBSCRIBED:
            return 0.0
        return ((now_ns or time.time_ns()) - self.connected_since_ns) / 1e9

    def last_tick_age_s(self, symbol: str | None = None, now_ns: int | None = None) -> float | None:
        """Seconds since the last tick (of `symbol`, or of any symbol); None if there was none."""
        last = self.last_tick_ns if symbol is None else self.symbol_last_tick_ns.get(symbol, 0)
        if not last:
            return None
        return ((now_ns or time.time_ns()) - last) / 1e9


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """What one feed connects to (built from a `[[feeds]]` entry)."""

    venue: str  # the venue label on ticks and metrics: binance, coinbase, kraken, or any name
    symbols: tuple[str, ...]  # unified BASE/QUOTE
    url: str = ""  # empty: the venue's public endpoint
    kind: str = "native"  # "native" | "ccxt"
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_reset_after_s: float = 60.0  # a connection healthy this long resets the backoff
    silence_timeout_s: float = 30.0  # no message this long: the connection is dead
    queue_size: int = 10_000  # ticks buffered between the socket and the consumer
    # Venue channel; empty: the venue's default (binance "trade", coinbase "ticker",
    # kraken "ticker", ccxt "tickers"). Others: binance "aggTrade", coinbase "ticker_batch",
    # kraken "trade", ccxt "trades".
    channel: str = ""
    exchange_id: str = ""  # ccxt exchange id (kind "ccxt"); empty: `venue`
    # Replace a connection this old, opening the new one before closing the old.
    # None: the venue's default (binance 23 h, as Binance closes connections at 24 h;
    # others never); 0: never.
    max_connection_age_s: float | None = None
    rollover_overlap_s: float = 5.0  # longest the old connection is kept once the new one flows
    ping_interval_s: float = 10.0  # application-level ping, where the venue has one (kraken)


class Feed(Protocol):
    """A venue client: `start()`, iterate `batches()`, `stop()`."""

    @property
    def status(self) -> FeedStatus: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def batches(self) -> AsyncIterator[list[Tick]]: ...
