"""The client websocket a feed talks through: every frame proves liveness, control is budgeted.

The websockets library answers the venue's ping frames by itself, so a plain connection
never tells the feed that a quiet venue is alive (Binance sends no heartbeat messages,
only a ping frame every 20 s). `FeedConnection` records the time of every incoming
frame, data or control (`last_frame_at`), so the silence watchdog sees a quiet but
healthy connection as alive. It also counts what the client sends that the venue may
limit: Binance allows 5 incoming messages a second per connection, pings, pongs and JSON
requests alike, and disconnects beyond that. Each ping the venue sends costs one
automatic pong; `ControlBudget` records those and the feed's own requests, and
`acquire()` waits until one more message keeps the last second under the budget.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event
from websockets.typing import DataLike

__all__ = ["ControlBudget", "FeedConnection"]


class ControlBudget:
    """Messages sent in a sliding window; `acquire()` waits for room for one more.

    `limit` is what may be sent per `window_s` including `reserve` slots kept free for
    pongs the venue's next pings will cause. None: no limit (the venue sets none).
    """

    def __init__(
        self, limit: int | None = None, *, reserve: int = 1, window_s: float = 1.1
    ) -> None:
        if limit is not None and limit <= reserve:
            raise ValueError(f"a control budget of {limit} leaves no room beyond {reserve} pongs")
        self.limit = limit
        self.reserve = reserve
        self.window_s = window_s
        self._sent: deque[float] = deque()
        self.sent_total = 0
        self.pongs = 0

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _trim(self, now: float) -> None:
        sent = self._sent
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()

    def record(self) -> None:
        """Count one message sent now (a request, or the pong answering a ping)."""
        self._sent.append(self._now())
        self.sent_total += 1

    def in_window(self) -> int:
        """Messages sent within the last `window_s`."""
        self._trim(self._now())
        return len(self._sent)

    async def acquire(self) -> None:
        """Wait until one more message keeps the window within `limit - reserve`; record it."""
        if self.limit is not None:
            allowed = self.limit - self.reserve
            while True:
                now = self._now()
                self._trim(now)
                if len(self._sent) < allowed:
                    break
                await asyncio.sleep(self._sent[0] + self.window_s - now + 0.001)
        self.record()


class FeedConnection(ClientConnection):
    """A `ClientConnection` that notes every incoming frame and budgets what it sends.

    `last_frame_at` is the loop time of the last frame received (any opcode), `pings` the
    venue's ping frames seen (each answered by the library with a pong, counted in
    `control`). Set `control` before sending anything that counts.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_frame_at = self.loop.time()
        self.pings = 0
        self.control = ControlBudget()

    async def ping(self, data: DataLike | None = None) -> Awaitable[float]:
        """Send a ping frame (counted in `control`, as the venue counts it)."""
        self.control.record()
        return await super().ping(data)

    def process_event(self, event: Event) -> None:
        """Note the frame's arrival, count a ping's automatic pong, then process as usual."""
        if isinstance(event, Frame):
            self.last_frame_at = self.loop.time()
            if event.opcode is Opcode.PING:
                self.pings += 1
                self.control.record()
                self.control.pongs += 1
        super().process_event(event)
