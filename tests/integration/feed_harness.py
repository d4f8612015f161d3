"""Helpers for feed tests on loopback: consume a feed in the background, wait for a state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import REGISTRY

from streams.feeds.interface import Feed
from streams.ticks import Tick


class Collector:
    """Consumes a feed's batches in the background."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.ticks: list[Tick] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for batch in self.feed.batches():
            self.ticks.extend(batch)

    def symbols_since(self, index: int) -> set[str]:
        """The symbols that ticked since `ticks[index]`."""
        return {t.symbol for t in self.ticks[index:]}

    async def close(self) -> None:
        """Stop the feed and wait for the consumer to finish."""
        await self.feed.stop()
        await asyncio.wait_for(self.task, 5.0)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `predicate` (state of feed and simulator tasks) until true, or fail."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the state belongs to other tasks
            await asyncio.sleep(0.005)


def metric(name: str, **labels: str) -> float:
    """A sample from the default Prometheus registry (0.0 if absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
