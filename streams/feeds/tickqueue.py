"""The bounded queue between a feed's connections and its consumer, and `batches()`.

A full queue makes `put` wait (backpressure); `blocked` tells the silence watchdog that
quiet is the consumer's doing, not the venue's. A websocket reader must not wait (the
venue's pings would go unanswered): it uses `try_put` and, when that fails, the
`Overflow`, whose forwarder is the one that waits, and which conflates to the newest
tick per symbol past its cap. `finish()` ends `batches()`: with None when the feed
stopped, with the exception when it crashed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from streams.errors import FeedError
from streams.ticks import Tick

__all__ = ["MAX_BATCH", "OVERFLOW_TICKS", "Overflow", "TickQueue"]

MAX_BATCH: Final = 4096  # ticks per batch handed to the consumer
OVERFLOW_TICKS: Final = 50_000  # ticks held while the queue is full before conflating

_Item = list[Tick] | Exception | None  # an Exception: the feed crashed; None: it stopped


class TickQueue:
    """Lists of ticks in arrival order, handed out in batches; `name` appears in errors.

    A deque and two kinds of waiter rather than `asyncio.Queue`: a put and a get are on
    every message's path, and the queue's bookkeeping (task counts, a waiter deque per
    call) cost more than the rest of the hand-over.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self._size = max(1, size)
        self._items: deque[_Item] = deque()
        self._getter: asyncio.Future[None] | None = None  # the consumer waits for an item
        self._putters: deque[asyncio.Future[None]] = deque()  # producers wait for room
        self._ended = False
        self.blocked = False  # a producer waits on a full queue
        self.unblocked_at = 0.0  # loop time the last wait ended

    @property
    def ended(self) -> bool:
        """True once `finish()` was called."""
        return self._ended

    def try_put(self, ticks: list[Tick]) -> bool:
        """Enqueue now if there is room and nobody waits for it; False otherwise."""
        if len(self._items) >= self._size or self._putters:
            return False
        self._append(ticks)
        return True

    async def put(self, ticks: list[Tick]) -> None:
        """Enqueue, waiting while the queue is full (in turn with other waiting producers)."""
        if len(self._items) >= self._size or self._putters:
            await self._wait_for_room()
        self._append(ticks)

    async def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        putters = self._putters
        waiter: asyncio.Future[None] = loop.create_future()
        putters.append(waiter)
        self.blocked = True
        try:
            while True:
                await waiter  # `_make_room` takes it off the deque when it wakes it
                if len(self._items) < self._size:
                    return
                waiter = loop.create_future()
                putters.appendleft(waiter)  # still first in line
        finally:
            if not waiter.done() and waiter in putters:  # cancelled while waiting
                putters.remove(waiter)
            self.blocked = bool(putters)
            self.unblocked_at = loop.time()

    def _append(self, item: _Item) -> None:
        self._items.append(item)
        getter, self._getter = self._getter, None
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _make_room(self) -> None:
        """Wake as many waiting producers, longest-waiting first, as there is room for."""
        putters, room = self._putters, self._size - len(self._items)
        while putters and room > 0:
            waiter = putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def finish(self, marker: Exception | None) -> None:
        """End `batches()`; make room by dropping the oldest batch if full."""
        if self._ended:
            return
        self._ended = True
        if len(self._items) >= self._size:
            self._items.popleft()
        self._append(marker)

    async def batches(self) -> AsyncIterator[list[Tick]]:
        """Ticks in arrival order, in batches (whatever arrived since the last one, capped)."""
        items = self._items
        while True:
            if self._ended and not items:
                return
            while not items:
                self._getter = asyncio.get_running_loop().create_future()
                try:
                    await self._getter
                finally:
                    self._getter = None
            batch: list[Tick] = []
            while True:
                item = items.popleft()
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise FeedError(f"{self.name} feed failed: {item!r}") from item
                batch.extend(item)
                if len(batch) >= MAX_BATCH or not items:
                    break
            if self._putters:
                self._make_room()
            if batch:
                yield batch
            if item is None:
                return


class Overflow:
    """Ticks that found the queue full, forwarded in order as it drains.

    The reader never waits on the consumer (see `SocketFeed._read`); what it cannot hand
    over waits here. Past `cap` ticks only the newest tick per symbol is kept: the price
    is what matters to detection, and memory stays bounded however long the consumer lags.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._ticks: list[Tick] = []
        self._in_flight = False  # `forward` holds a batch the queue has no room for yet
        self._ready = asyncio.Event()

    @property
    def empty(self) -> bool:
        """Nothing waits: a new tick may go straight to the queue without overtaking."""
        return not self._ticks and not self._in_flight

    def add(self, ticks: list[Tick]) -> int:
        """Hold `ticks`; returns how many older ticks were conflated away to stay under `cap`."""
        held = self._ticks
        held.extend(ticks)
        self._ready.set()
        if len(held) <= self.cap:
            return 0
        newest = {tick.symbol: tick for tick in held}
        self._ticks = list(newest.values())
        return len(held) - len(self._ticks)

    async def forward(self, queue: TickQueue) -> None:
        """Move held ticks to `queue` as room appears, forever (cancel to stop)."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            if not self._ticks:
                continue
            batch, self._ticks = self._ticks, []
            self._in_flight = True
            try:
                await queue.put(batch)
            finally:
                self._in_flight = False
