"""The bounded queue between a feed's connections and its consumer, and `batches()`.

A full queue blocks the reader (backpressure) instead of dropping ticks; `blocked` tells
the silence watchdog that quiet is the consumer's doing, not the venue's. `finish()` ends
`batches()`: with None when the feed stopped, with the exception when it crashed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

from streams.errors import FeedError
from streams.ticks import Tick

__all__ = ["MAX_BATCH", "TickQueue"]

MAX_BATCH: Final = 4096  # ticks per batch handed to the consumer

_Item = list[Tick] | Exception | None  # an Exception: the feed crashed; None: it stopped


class TickQueue:
    """Lists of ticks in arrival order, handed out in batches; `name` appears in errors."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=max(1, size))
        self._ended = False
        self.blocked = False  # a producer waits on a full queue
        self.unblocked_at = 0.0  # loop time the last wait ended

    @property
    def ended(self) -> bool:
        """True once `finish()` was called."""
        return self._ended

    async def put(self, ticks: list[Tick]) -> None:
        """Enqueue, waiting while the queue is full."""
        try:
            self._queue.put_nowait(ticks)
        except asyncio.QueueFull:
            self.blocked = True
            try:
                await self._queue.put(ticks)
            finally:
                self.blocked = False
                self.unblocked_at = asyncio.get_running_loop().time()

    def finish(self, marker: Exception | None) -> None:
        """End `batches()`; make room by dropping the oldest batch if full."""
        if self._ended:
            return
        self._ended = True
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(marker)

    async def batches(self) -> AsyncIterator[list[Tick]]:
        """Ticks in arrival order, in batches (whatever arrived since the last one, capped)."""
        queue = self._queue
        while True:
            if self._ended and queue.empty():
                return
            item = await queue.get()
            batch: list[Tick] = []
            while True:
                if item is None:
                    break
                if isinstance(item, Exception):
                    raise FeedError(f"{self.name} feed failed: {item!r}") from item
                batch.extend(item)
                if len(batch) >= MAX_BATCH or queue.empty():
                    break
                item = queue.get_nowait()
            if batch:
                yield batch
            if item is None:
                return
