"""The feed interface: one small client per venue, the engine never knows which.

A feed is started, yields Ticks (in batches, one per websocket message or less), and is
stopped. It reconnects by itself; malformed messages are counted and dropped, never
raised. `status()` is what the status line and health metrics show.
"""

from __future__ import annotations

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
    """Running counters of one feed (mutable: owned and updated by the feed)."""

    venue: str
    state: FeedState = FeedState.IDLE
    ticks: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count
    reconnects: int = 0
    gaps: int = 0
    last_tick_ns: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """What one feed connects to (built from a `[[feeds]]` entry)."""

    venue: str
    symbols: tuple[str, ...]  # unified BASE/QUOTE
    url: str = ""  # empty: the venue's public endpoint
    kind: str = "native"  # "native" | "ccxt"
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_reset_after_s: float = 60.0  # a connection healthy this long resets the backoff
    silence_timeout_s: float = 30.0  # no message this long: the connection is dead
    queue_size: int = 10_000  # ticks buffered between the socket and the consumer


class Feed(Protocol):
    """A venue client: `start()`, iterate `batches()`, `stop()`."""

    @property
    def status(self) -> FeedStatus: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def batches(self) -> AsyncIterator[list[Tick]]: ...
