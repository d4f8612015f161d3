"""Websocket alert subscriptions on `websockets`: `ws://host:port/v1/alerts[?since=...]`.

Protocol (docs/subscriptions.md):
  1. handshake with `Authorization: Bearer <token>`; refused with HTTP 401 (no or unknown
     token), 404 (another path) or 400 (a `since` that is neither an alert id nor a time);
  2. the client sends `{"type": "subscribe", "filter": {...}}` within `subscribe_timeout_s`
     (else close 1008); the server answers `{"type": "subscribed", ...}`;
  3. with `since`, the alerts recorded after it are replayed from the AlertStore, then
     `{"type": "replay_done", "replayed": n}`; then `{"type": "alert", "alert": {...}}` live.

Every alert is recorded in the store before fan-out, so an alert is either in the replay
or arrives live after it (or both, and then it is sent once): no gap, no duplicate. A
client that falls `queue_size` messages behind or blocks a send for `send_timeout_s` is
closed with 1008 and a reason; it reconnects with `since` and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from prometheus_client import Counter, Gauge
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from monitor.alerts.filter import AlertFilter, FilterError
from monitor.alerts.schema import Alert, decode_alert
from monitor.alerts.store import AlertStore
from monitor.alerts.subscriber import Subscriber, alert_frame
from monitor.alerts.tokens import TokenRegistry, bearer_token

log = logging.getLogger(__name__)

PATH = "/v1/alerts"
REPLAY_PAGE = 1_000
REPLAY_YIELD_EVERY = 64
ALERT_ID = re.compile(r"^hma_[0-9a-f]{24}$")

SUBSCRIBERS = Gauge("hm_ws_subscribers", "Websocket alert subscribers connected.")
CONNECTIONS = Counter(
    "hm_ws_connections_total",
    "Websocket subscription attempts by result (subscribed, unauthorized, not_found, "
    "bad_since, bad_subscribe, subscribe_timeout).",
    ["result"],
)
SENT = Counter(
    "hm_ws_alerts_sent_total",
    "Alerts sent to websocket subscribers, by mode (replay, live).",
    ["mode"],
)
DISCONNECTS = Counter(
    "hm_ws_disconnects_total",
    "Websocket subscribers gone, by reason (client, slow_consumer, server_stop).",
    ["reason"],
)
_json = msgspec.json.Encoder()


class SinceError(ValueError):
    """A `since` parameter that is neither an alert id nor an ISO 8601 time."""


def parse_since(value: str | None) -> str | None:
    """Validate `since`: an alert id (`hma_...`) or an ISO 8601 time; None when absent."""
    if value is None or value == "":
        return None
    if ALERT_ID.match(value):
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SinceError(
            f"since={value!r} is neither an alert id (hma_ + 24 hex) nor an ISO 8601 time"
        ) from exc
    return iso_utc(when)


def iso_utc(when: datetime) -> str:
    """The alerts' own time format (`emitted_at`): UTC, milliseconds, `Z`; naive means UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class SubscriptionServer:
    """The `/v1/alerts` websocket server, and an AlertSink that fans alerts out to it."""

    def __init__(
        self,
        store: AlertStore,
        tokens: TokenRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        queue_size: int = 1000,
        send_timeout_s: float = 10.0,
        subscribe_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        self.name = "websocket"
        self._store = store
        self._tokens = tokens
        self._host = host
        self._port = port
        self._queue_size = queue_size
        self._send_timeout = send_timeout_s
        self._subscribe_timeout = subscribe_timeout_s
        self._close_timeout = close_timeout_s
        self._server: Server | None = None
        self._stopping = False
        self._subscribers: set[Subscriber] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}{PATH}"

    @property
    def listening(self) -> bool:
        return self._server is not None and not self._stopping

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        self._stopping = False
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._check_request,
            close_timeout=self._close_timeout,
            max_size=64 * 1024,
        )
        log.info("alert subscriptions served", extra={"url": self.url, "tokens": len(self._tokens)})

    async def stop(self) -> None:
        if self._server is None:
            return
        self._stopping = True
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        self._server = None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        """Fan out to every subscriber's outbox; never waits on a client."""
        if not self._subscribers:
            return
        for alert, encoded in alerts:
            frame = alert_frame(encoded)
            for subscriber in list(self._subscribers):
                subscriber.offer(alert, frame)

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse at the handshake what can be refused there, with a reason in the body."""
        parts = urlsplit(request.path)
        if parts.path != PATH:
            CONNECTIONS.labels("not_found").inc()
            return connection.respond(HTTPStatus.NOT_FOUND, f"no such path; use {PATH}\n")
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or self._tokens.holder(token) is None:
            CONNECTIONS.labels("unauthorized").inc()
            why = "missing bearer token" if token is None else "unknown token"
            response = connection.respond(
                HTTPStatus.UNAUTHORIZED, f"{why}: send Authorization: Bearer <token>\n"
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="harvest-monitor alerts"'
            return response
        try:
            parse_since(_query(parts.query).get("since"))
        except SinceError as exc:
            CONNECTIONS.labels("bad_since").inc()
            return connection.respond(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None  # the handshake is done
        holder = self._tokens.holder(bearer_token(request.headers.get("Authorization")) or "")
        since = parse_since(_query(urlsplit(request.path).query).get("since"))
        peer = {"subscriber": holder, "remote": str(ws.remote_address)}
        alert_filter = await self._subscribe_message(ws)
        if alert_filter is None:
            return
        subscriber = Subscriber(
            holder or "?", alert_filter, self._queue_size, replaying=since is not None
        )
        self._subscribers.add(subscriber)  # from here on, live alerts are held or queued
        SUBSCRIBERS.set(len(self._subscribers))
        CONNECTIONS.labels("subscribed").inc()
        log.info("subscriber connected", extra={**peer, "since": since})
        reason = "client"
        try:
            await ws.send(
                _json.encode(
                    {
                        "type": "subscribed",
                        "filter": alert_filter.to_json(),
                        "since": since,
                        "server_time": iso_utc(datetime.now(UTC)),
                    }
                ),
                text=True,
            )
            replayed = await self._replay(ws, subscriber, since) if since is not None else 0
            subscriber.go_live(_json.encode({"type": "replay_done", "replayed": replayed}))
            reason = await self._pump(ws, subscriber)
        except ConnectionClosed:
            reason = "server_stop" if self._stopping else "client"
        except TimeoutError:
            subscriber.cut_off(f"slow consumer: a send took over {self._send_timeout:g}s")
            reason = "slow_consumer"
        finally:
            self._subscribers.discard(subscriber)
            SUBSCRIBERS.set(len(self._subscribers))
            reason = "slow_consumer" if subscriber.cut.is_set() else reason
            DISCONNECTS.labels(reason).inc()
            log.info("subscriber gone", extra={**peer, "reason": subscriber.cut_reason or reason})
            if subscriber.cut.is_set():
                await self._close(ws, CloseCode.POLICY_VIOLATION, subscriber.cut_reason)

    async def _subscribe_message(self, ws: ServerConnection) -> AlertFilter | None:
        """The client's filter, or None after closing with the reason it was refused."""
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                raw = await ws.recv()
        except TimeoutError:
            CONNECTIONS.labels("subscribe_timeout").inc()
            await self._close(
                ws,
                CloseCode.POLICY_VIOLATION,
                f"no subscribe message within {self._subscribe_timeout:g}s",
            )
            return None
        except ConnectionClosed:
            return None
        try:
            message: Any = msgspec.json.decode(raw)
            if not isinstance(message, dict) or message.get("type") != "subscribe":
                raise FilterError('expected {"type": "subscribe", "filter": {...}}')
            return AlertFilter.from_json(message.get("filter"))
        except (msgspec.DecodeError, FilterError) as exc:
            CONNECTIONS.labels("bad_subscribe").inc()
            await self._close(ws, CloseCode.POLICY_VIOLATION, f"bad subscribe message: {exc}")
            return None

    async def _replay(self, ws: ServerConnection, subscriber: Subscriber, since: str) -> int:
        """Send what was recorded after `since`, page by page, in ledger order."""
        sent = 0
        cursor = since
        while not subscriber.cut.is_set():
            page = self._store.alerts_since(cursor, REPLAY_PAGE)
            for stored in page:
                try:
                    alert = decode_alert(stored.body)
                except msgspec.DecodeError as exc:
                    log.error(
                        "stored alert unreadable, not replayed",
                        extra={"alert_id": stored.alert_id, "error": str(exc)},
                    )
                    continue
                if subscriber.filter.matches(alert) and subscriber.take_replayed(alert.alert_id):
                    async with asyncio.timeout(self._send_timeout):
                        await ws.send(alert_frame(stored.body), text=True)
                    SENT.labels("replay").inc()
                    sent += 1
                    if sent % REPLAY_YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # a long replay must not starve detection
            if len(page) < REPLAY_PAGE:
                break
            cursor = page[-1].alert_id
        return sent

    async def _pump(self, ws: ServerConnection, subscriber: Subscriber) -> str:
        """Send the outbox until the client leaves or is cut off; returns why it ended."""
        writer = asyncio.create_task(self._write(ws, subscriber))
        reader = asyncio.create_task(_discard_incoming(ws))
        cut = asyncio.create_task(subscriber.cut.wait())
        done, pending = await asyncio.wait({writer, reader, cut}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        if writer in done and isinstance(writer.exception(), TimeoutError):
            subscriber.cut_off(f"slow consumer: a send took over {self._send_timeout:g}s")
        if subscriber.cut.is_set():
            return "slow_consumer"
        return "server_stop" if self._stopping else "client"

    async def _write(self, ws: ServerConnection, subscriber: Subscriber) -> None:
        while True:
            frame = await subscriber.outbox.get()
            async with asyncio.timeout(self._send_timeout):
                await ws.send(frame, text=True)
            if frame.startswith(b'{"type":"alert"'):
                SENT.labels("live").inc()

    async def _close(self, ws: ServerConnection, code: int, reason: str) -> None:
        """Close with a reason; a client that does not read is aborted after a short wait."""
        try:
            async with asyncio.timeout(self._close_timeout):
                await ws.close(code, reason[:120])  # a close reason must fit in 123 bytes
        except TimeoutError:
            ws.transport.abort()


async def _discard_incoming(ws: ServerConnection) -> None:
    """Read and ignore client messages after subscribing; returns when the client closes."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


def _query(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
