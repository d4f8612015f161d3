"""What a venue plugs into the websocket feed engine (`socket_feed.SocketFeed`).

A `VenueProtocol` knows the endpoint and opens one `VenueSession` per connection; the
session sends the subscriptions, turns each message into Ticks (or a drop reason, or
nothing), and runs the venue's application keepalive if it has one. It reports back to
the engine through its `SessionLink`: subscribed, sequence gaps, refusals, an announced
shutdown. `Overlap` lets two connections of one feed carry the same trades during a
planned rollover and passes each trade on exactly once, in order.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from streams.feeds.connection import FeedConnection
from streams.ticks import Tick

__all__ = ["Overlap", "SessionEnded", "SessionLink", "VenueProtocol", "VenueSession"]


class SessionEnded(Exception):
    """This connection is finished (silent, no pong, shut down): the engine reconnects.

    `stall` marks the silent kind (counted in `FeedStatus.stalls`).
    """

    def __init__(self, message: str, *, stall: bool = False) -> None:
        super().__init__(message)
        self.stall = stall


class SessionLink(Protocol):
    """The engine side of one connection, as its session sees it."""

    @property
    def serial(self) -> int: ...

    @property
    def overlap(self) -> Overlap | None: ...

    def subscribed(self) -> None: ...

    def gap(self, missed: int) -> None: ...

    def drop(self, reason: str, raw: bytes) -> None:
        """Count one bad part of a message whose other parts pass (e.g. one of 3 tickers)."""
        ...

    def refused(self, message: str) -> None: ...

    def replace_soon(self, reason: str) -> None: ...


class VenueSession(Protocol):
    """One connection's protocol state (pending acks, sequence numbers, pings)."""

    async def subscribe(self, ws: FeedConnection) -> None: ...

    def handle(self, raw: bytes, recv_ns: int) -> list[Tick] | str | None:
        """Ticks to pass on, a drop reason, or None (a control message, handled)."""
        ...

    async def keepalive(self, ws: FeedConnection) -> None: ...


class VenueProtocol(Protocol):
    """A venue as the engine sees it: where to connect, and a session per connection."""

    @property
    def endpoint(self) -> str: ...

    @property
    def client_ping_interval_s(self) -> float | None:
        """Seconds between the client's own ping frames; None: the venue pings, not us."""
        ...

    @property
    def control_limit(self) -> int | None:
        """Messages the venue accepts from a client per second (pongs included); None: no limit."""
        ...

    def session(self, link: SessionLink) -> VenueSession: ...


class Overlap:
    """Dedupe of a rollover: the `old` and `new` connections carry the same trades for a while.

    Until the switch, the old connection stays authoritative (its trades pass in its
    order) and the new one's are held back; the old one has caught up on a symbol once it
    delivers a trade the new one already has. `ready` is set when it caught up on every
    symbol the new one delivered. `switch()` then releases what only the new connection
    had; afterwards a trade passes once, from whichever connection brings it first.
    Trades are keyed by (symbol, venue trade id).
    """

    def __init__(self, old: int, new: int) -> None:
        self.old = old
        self.new = new
        self.ready = asyncio.Event()
        self.switched = False
        self.duplicates = 0
        self._emitted: set[tuple[str, int]] = set()
        self._held: dict[tuple[str, int], Tick] = {}  # insertion-ordered
        self._new_symbols: set[str] = set()
        self._caught_up: set[str] = set()

    def admit(self, serial: int, tick: Tick, trade_id: int) -> bool:
        """True: pass `tick` on now; False: a duplicate, or held back until the switch."""
        key = (tick.symbol, trade_id)
        if key in self._emitted:
            self.duplicates += 1
            if serial == self.new and not self.switched:  # the old one is ahead: caught up
                self._new_symbols.add(tick.symbol)
                self._caught_up.add(tick.symbol)
                self._check()
            return False
        if not self.switched:
            if serial == self.new:
                self._held.setdefault(key, tick)
                self._new_symbols.add(tick.symbol)
                self._check()
                return False
            if self._held.pop(key, None) is not None:
                self.duplicates += 1
                self._caught_up.add(tick.symbol)
                self._check()
        self._emitted.add(key)
        return True

    def switch(self) -> list[Tick]:
        """The new connection takes over; returns its held trades the old one never delivered."""
        self.switched = True
        released = list(self._held.values())
        self._emitted.update(self._held)
        self._held.clear()
        return released

    def _check(self) -> None:
        if self._new_symbols and self._new_symbols <= self._caught_up:
            self.ready.set()
