"""What every simulated venue shares: a loopback websocket server, faults to inject, a pacer.

A venue module (e.g. `binance.py`) supplies the protocol: a connection handler, an
optional HTTP path check, and a `step()` that advances the market and sends one round of
messages. `LoopbackServer` owns the sockets and the fault-injection API that tests use
(`drop_connections`, `send_raw`, `stall`); `run_paced` calls `step()` at a fixed rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["LoopbackServer", "RequestRate", "run_paced"]

log = logging.getLogger(__name__)

Handler = Callable[[ServerConnection], Awaitable[None]]
PathCheck = Callable[[ServerConnection, Request], Response | None]


class LoopbackServer:
    """A websocket server on `host` (loopback by default; port 0 picks a free port).

    Tracks open connections, counts every accepted one, closes a connection when it
    reaches `max_connection_age_s` (None: never), and injects faults: abrupt disconnects,
    raw text to every client, and stalls (connections stay open, the venue sends nothing
    while `stalled`).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        process_request: PathCheck | None = None,
        max_size: int = 2**20,
        max_connection_age_s: float | None = None,
        create_connection: type[ServerConnection] | None = None,
    ) -> None:
        self._handler = handler
        self._create_connection = create_connection
        self._host = host
        self._port = port
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._process_request = process_request
        self._max_size = max_size
        self._max_age_s = max_connection_age_s
        self._closing: set[asyncio.Task[None]] = set()
        self._server: Server | None = None
        self.connections: set[ServerConnection] = set()
        self.connections_total = 0
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._stall_timer: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if self._server is None:
            raise RuntimeError("the simulated venue is not started: call `await start()` first")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """`ws://host:port`, the base URL a feed is configured with."""
        return f"ws://{self._host}:{self.port}"

    async def start(self) -> None:
        """Bind and listen."""
        if self._server is not None:
            raise RuntimeError("the simulated venue is already started")
        self._server = await serve(
            self._serve,
            self._host,
            self._port,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            process_request=self._process_request,
            compression=None,
            max_size=self._max_size,
            create_connection=self._create_connection,
        )

    async def stop(self) -> None:
        """Close every connection (1001 going away) and the listening socket."""
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        self._unstalled.set()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, connection: ServerConnection) -> None:
        self.connections.add(connection)
        self.connections_total += 1
        timer = None
        if self._max_age_s is not None:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(self._max_age_s, self._expire, connection)
        try:
            await self._handler(connection)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(connection)
            if timer is not None:
                timer.cancel()

    def _expire(self, connection: ServerConnection) -> None:
        """Close a connection that reached the venue's maximum age (Binance: 24 hours)."""
        self._close(connection, "connection reached its maximum age")

    def _close(self, connection: ServerConnection, reason: str) -> None:
        task = asyncio.create_task(connection.close(1000, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def close_later(self, connection: ServerConnection, delay_s: float, reason: str) -> None:
        """Close `connection` cleanly (1000) after `delay_s` seconds."""
        asyncio.get_running_loop().call_later(delay_s, self._close, connection, reason)

    def send_to(self, connection: ServerConnection, data: str | bytes) -> None:
        """Send one text frame to one client without waiting."""
        broadcast((connection,), data, text=True)

    # Fault injection -------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Cut every client connection abruptly (no close frame); returns how many."""
        dropped = list(self.connections)
        for connection in dropped:
            connection.transport.abort()
        log.info("dropped connections", extra={"connections": len(dropped)})
        return len(dropped)

    def send_raw(self, data: str | bytes) -> int:
        """Send `data` as one text frame to every client (garbage injection); returns how many."""
        targets = list(self.connections)
        broadcast(targets, data, text=True)
        return len(targets)

    def stall(self, seconds: float) -> None:
        """Send nothing for `seconds` (connections and pings carry on), then resume."""
        if self._stall_timer is not None:
            self._stall_timer.cancel()
        self._unstalled.clear()
        loop = asyncio.get_running_loop()
        self._stall_timer = loop.call_later(seconds, self.resume)
        log.info("stalled", extra={"seconds": seconds})

    def resume(self) -> None:
        """End a stall now."""
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._unstalled.set()

    @property
    def stalled(self) -> bool:
        """True while a stall is in effect."""
        return not self._unstalled.is_set()

    async def wait_unstalled(self) -> None:
        """Return at once, or when the current stall ends."""
        if not self._unstalled.is_set():
            await self._unstalled.wait()


async def run_paced(
    interval_s: float,
    step: Callable[[], Awaitable[None]],
    ready: Callable[[], Awaitable[None]],
    *,
    max_burst: int = 256,
) -> None:
    """Call `step()` every `interval_s` (0: as fast as the clients take it), forever.

    Below the event loop's timer resolution the steps run in bursts to keep the average
    rate; a backlog of more than `max_burst` steps (a stall, a slow client) is dropped, not
    replayed. `ready()` is awaited before each burst (it blocks during a stall).
    """
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        if interval_s <= 0:
            await ready()
            for _ in range(max_burst):
                await step()
            await asyncio.sleep(0)  # let the handlers (requests, closes) run
            continue
        now = loop.time()
        if now < next_at:
            await asyncio.sleep(next_at - now)
            continue
        before = loop.time()
        await ready()
        if loop.time() - before > interval_s:  # resumed after a stall: start afresh
            next_at = loop.time()
        due = min(max_burst, int((loop.time() - next_at) / interval_s) + 1)
        for _ in range(due):
            await step()
        next_at += due * interval_s
        if loop.time() - next_at > max_burst * interval_s:
            next_at = loop.time()


class RequestRate:
    """A venue's limit on incoming messages per connection (Binance: 5 a second)."""

    def __init__(self, per_second: int | None = None) -> None:
        self.per_second = per_second
        self._times: deque[float] = deque()

    def exceeded(self) -> bool:
        """Record one message; True if the last second now holds more than allowed."""
        if self.per_second is None:
            return False
        now = time.monotonic()
        self._times.append(now)
        while self._times[0] <= now - 1.0:
            self._times.popleft()
        return len(self._times) > self.per_second
