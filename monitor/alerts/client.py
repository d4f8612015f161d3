"""A subscriber of `/v1/alerts` that survives disconnects: `harvest-monitor alerts tail`.

After a drop (server restart, network, cut off as too slow) it reconnects with
`since=<last alert id received>` (or, before the first alert, the server's time at
subscription), so it misses nothing; alert ids already seen are skipped, so it shows
nothing twice. A refusal (bad token, bad filter) is not retried: it raises
SubscriptionRefused with the server's reason.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from monitor.alerts.filter import AlertFilter
from monitor.alerts.schema import Alert, decode_alert

SEEN_CAP = 100_000
RETRYABLE_CLOSE = ("slow consumer", "fell behind")


class SubscriptionRefused(Exception):
    """The server refused this client (token, path, since or filter); retrying won't help."""


class _Frame(msgspec.Struct):
    type: str
    alert: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    replayed: int | None = None
    server_time: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """One alert as received: decoded, and its exact hm.alert/1 bytes."""

    alert: Alert
    raw: bytes


def with_since(url: str, since: str | None) -> str:
    """`url` with its `since` query parameter set (or removed)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "since"]
    if since:
        query.append(("since", since))
    return urlunsplit(parts._replace(query=urlencode(query)))


class AlertClient:
    """Yields alerts from the server forever (or until refused), reconnecting with `since`."""

    def __init__(
        self,
        url: str,
        token: str,
        alert_filter: AlertFilter | None = None,
        since: str | None = None,
        *,
        reconnect: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._filter = alert_filter or AlertFilter()
        self.since = since
        self._reconnect = reconnect
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._on_event = on_event or (lambda _msg: None)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.connects = 0
        self.ended = ""  # why the last connection ended or failed ('' while none did)

    async def alerts(self) -> AsyncIterator[Received]:
        failures = 0
        while True:
            try:
                async with connect(
                    with_since(self._url, self.since),
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    open_timeout=10,
                    close_timeout=2,
                ) as ws:
                    self.connects += 1
                    failures = 0
                    async for item in self._session(ws):
                        yield item
            except InvalidStatus as exc:
                body = exc.response.body.decode("utf-8", "replace").strip()
                raise SubscriptionRefused(f"HTTP {exc.response.status_code}: {body}") from exc
            except ConnectionClosed as exc:
                reason = exc.rcvd.reason if exc.rcvd is not None else ""
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == 1008 and not reason.startswith(RETRYABLE_CLOSE):
                    raise SubscriptionRefused(f"closed by server: {reason}") from exc
                self.ended = f"disconnected ({code} {reason or 'no reason'})"
            except OSError as exc:
                self.ended = f"cannot connect: {exc}"
            if not self._reconnect:
                return  # the caller says why (self.ended), once
            self._on_event(self.ended)
            failures += 1
            initial, cap = self._backoff
            delay = min(cap, initial * 2 ** min(failures - 1, 16)) * (0.5 + random.random() / 2)
            self._on_event(f"reconnecting in {delay:.1f}s with since={self.since}")
            await asyncio.sleep(delay)

    async def _session(self, ws: ClientConnection) -> AsyncIterator[Received]:
        await ws.send(
            msgspec.json.encode({"type": "subscribe", "filter": self._filter.to_json()}).decode()
        )
        async for message in ws:
            try:
                frame = msgspec.json.decode(message, type=_Frame)
            except msgspec.DecodeError as exc:
                self._on_event(f"unreadable message from the server skipped: {exc}")
                continue
            if frame.type == "subscribed":
                self._on_event("subscribed")
                if self.since is None and frame.server_time:
                    self.since = frame.server_time
            elif frame.type == "replay_done":
                self._on_event(f"replayed {frame.replayed} missed alert(s); now live")
            elif frame.type == "alert" and len(frame.alert):
                raw = bytes(frame.alert)
                try:
                    alert = decode_alert(raw)
                except msgspec.DecodeError as exc:
                    self._on_event(f"unreadable alert from the server skipped: {exc}")
                    continue
                self.since = alert.alert_id
                if alert.alert_id in self._seen:
                    continue
                self._seen[alert.alert_id] = None
                if len(self._seen) > SEEN_CAP:
                    self._seen.popitem(last=False)
                yield Received(alert, raw)
