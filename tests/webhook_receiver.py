"""A webhook receiver for tests: a real HTTP server (aiohttp.web) on loopback.

It verifies every signature (the Standard Webhooks headers, with `signing.verify`), answers
by a script (status and headers per alert id and attempt), and counts what it accepted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from monitor.alerts.signing import ID_HEADER, SignatureError, verify

SECRET = b"s3cret-for-tests"

# What the receiver answers: (alert_id, attempt number for that id) -> (status, headers).
Script = Callable[[str, int], tuple[int, dict[str, str]]]


@dataclass
class Receiver:
    """A webhook endpoint that verifies every signature and answers by script."""

    script: Script = lambda _id, _n: (200, {})
    secret: bytes | None = SECRET
    hold: asyncio.Event | None = None  # when set, requests wait for it before answering
    slow_first_s: float = 0.0  # the first request of each alert answers this late
    hang: set[str] = field(default_factory=set)  # these alert ids never get an answer
    started: list[str] = field(default_factory=list)  # alert ids of requests received
    attempts: list[tuple[str, int, float]] = field(default_factory=list)  # id, status, time
    accepted: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/path-is-secret"

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/hook/path-is-secret", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._stopping.set()
        if self.hold is not None:
            self.hold.set()  # let held requests finish, or cleanup waits for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        alert_id = request.headers[ID_HEADER]
        if self.secret is not None:
            try:
                verify(self.secret, request.headers, body)
            except SignatureError:
                self.bad_signatures += 1
                return web.Response(status=401, text="bad signature")
        self.started.append(alert_id)
        if alert_id in self.hang:  # until the client gives up, or the server stops
            await self._stopping.wait()
            return web.Response(status=503, text="stopping")
        if self.hold is not None:
            await self.hold.wait()
        tries = sum(1 for a in self.attempts if a[0] == alert_id) + 1
        if tries == 1 and self.slow_first_s:
            self.attempts.append((alert_id, 0, time.monotonic()))  # 0: answered too late
            await asyncio.sleep(self.slow_first_s)
            return web.Response(status=200, text="late")
        status, headers = self.script(alert_id, tries)
        self.attempts.append((alert_id, status, time.monotonic()))
        self.headers.append(dict(request.headers))
        if 200 <= status < 300:
            self.accepted[alert_id] += 1
            self.order.append(alert_id)
            self.bodies.append(body)
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")
