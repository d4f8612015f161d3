"""Websocket alert subscriptions: a real `websockets` server and clients on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from monitor.alerts.client import AlertClient, Received, SubscriptionRefused
from monitor.alerts.filter import AlertFilter
from monitor.alerts.schema import Alert
from monitor.alerts.store import AlertStore
from monitor.alerts.subscriptions import DISCONNECTS, SubscriptionServer
from monitor.alerts.tokens import TokenRegistry, new_token, token_hash
from monitor.ledger.ledger import Ledger
from tests.alerting import (
    STORES,
    MemoryAlertStore,
    eventually,
    open_store,
    publish,
    sample_alert,
)

TOKEN = new_token()
TOKENS = TokenRegistry([("ops", token_hash(TOKEN)), ("other", token_hash(new_token()))])
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_server(store: AlertStore, port: int = 0, **kw: Any) -> SubscriptionServer:
    options: dict[str, Any] = {"send_timeout_s": 2.0, "subscribe_timeout_s": 2.0}
    options.update(kw)
    return SubscriptionServer(store, TOKENS, port=port, **options)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    yield from open_store(request.param, tmp_path)


@pytest.fixture
async def server(store: AlertStore) -> AsyncIterator[SubscriptionServer]:
    srv = make_server(store)
    await srv.start()
    yield srv
    await srv.stop()


async def subscribe(
    url: str, alert_filter: dict[str, Any] | None = None, **connect_kw: Any
) -> ClientConnection:
    ws = await connect(url, additional_headers=AUTH, **connect_kw)
    await ws.send(json.dumps({"type": "subscribe", "filter": alert_filter or {}}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def read_alerts(ws: ClientConnection, count: int) -> list[str]:
    """The ids of the next `count` alerts (control messages skipped)."""
    ids: list[str] = []
    async with asyncio.timeout(10):
        while len(ids) < count:
            message = json.loads(await ws.recv())
            if message["type"] == "alert":
                ids.append(message["alert"]["alert_id"])
    return ids


async def until_live(ws: ClientConnection) -> int:
    """Read up to `replay_done`; the number of replayed alerts."""
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "replay_done":
                return int(message["replayed"])


async def small_buffer_socket(port: int) -> socket.socket:
    """A connected TCP socket with a 4 KiB receive buffer (backpressure comes at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


def ids(alerts: list[Alert]) -> list[str]:
    return [a.alert_id for a in alerts]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/alerts", {}, 401),
        ("/v1/alerts", {"Authorization": "Bearer hmt_wrong"}, 401),
        ("/v1/alerts", {"Authorization": f"Basic {TOKEN}"}, 401),
        ("/v2/alerts", AUTH, 404),
        ("/v1/alerts?since=yesterday", AUTH, 400),
    ],
)
async def test_handshake_refusals(
    server: SubscriptionServer, path: str, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(f"ws://127.0.0.1:{server.port}{path}", additional_headers=headers)
    assert info.value.response.status_code == status
    assert info.value.response.body  # a reason the operator can read


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "bad subscribe message"),
        ('{"type": "hello"}', "bad subscribe message"),
        ('{"type": "subscribe", "filter": {"accounts": "acct-1"}}', "filter.accounts"),
        ('{"type": "subscribe", "filter": {"colour": "red"}}', "unknown field"),
    ],
)
async def test_malformed_subscribe_is_closed_with_a_reason(
    server: SubscriptionServer, message: str, reason: str
) -> None:
    async with connect(server.url, additional_headers=AUTH) as ws:
        await ws.send(message)
        with pytest.raises(ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1008 and reason in info.value.rcvd.reason


async def test_a_client_that_never_subscribes_is_closed(store: AlertStore) -> None:
    srv = make_server(store, subscribe_timeout_s=0.2)
    await srv.start()
    try:
        async with connect(srv.url, additional_headers=AUTH) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None and "no subscribe message" in info.value.rcvd.reason
    finally:
        await srv.stop()


async def test_filters_are_respected(server: SubscriptionServer, store: AlertStore) -> None:
    everything = await subscribe(server.url)
    eth_only = await subscribe(server.url, {"assets": ["eth"]})
    big_acct2 = await subscribe(server.url, {"accounts": ["acct-2"], "min_net_benefit_usd": 100})
    alerts = [
        sample_alert(1, asset="BTC"),
        sample_alert(2, asset="ETH", account="acct-2", net_benefit="99.99"),
        sample_alert(3, asset="ETH", account="acct-2", net_benefit="100.00"),
        sample_alert(4, asset="SOL", account="acct-2", net_benefit="500.00"),
    ]
    await publish(store, [server], alerts)
    assert await read_alerts(everything, 4) == ids(alerts)
    assert await read_alerts(eth_only, 2) == ids(alerts[1:3])
    assert await read_alerts(big_acct2, 2) == ids(alerts[2:4])
    for ws in (everything, eth_only, big_acct2):
        await ws.close()


async def test_reconnect_with_since_receives_what_was_missed_and_no_duplicates(
    server: SubscriptionServer, store: AlertStore
) -> None:
    alerts = [sample_alert(i) for i in range(9)]
    sentinel = sample_alert(99)
    ws = await subscribe(server.url)
    await publish(store, [server], alerts[:3])
    first = await read_alerts(ws, 3)
    await ws.close()
    await publish(store, [server], alerts[3:6])  # missed while away
    ws = await subscribe(f"{server.url}?since={first[-1]}")
    replayed = await read_alerts(ws, 3)
    assert await until_live(ws) == 3
    await publish(store, [server], alerts[6:])
    await publish(store, [server], alerts[5:7])  # repeats of ids already sent: not again
    await publish(store, [server], [sentinel])
    live = await read_alerts(ws, 4)
    await ws.close()
    assert first + replayed + live == [*ids(alerts), sentinel.alert_id]


async def test_since_a_time_replays_from_that_time(
    server: SubscriptionServer, store: AlertStore
) -> None:
    alerts = [sample_alert(i) for i in range(5)]
    await publish(store, [server], alerts)
    ws = await subscribe(f"{server.url}?since={alerts[2].emitted_at}")
    assert await read_alerts(ws, 3) == ids(alerts[2:])
    await ws.close()


async def test_replay_racing_live_alerts_has_no_gap_and_no_duplicate(
    server: SubscriptionServer, store: AlertStore
) -> None:
    alerts = [sample_alert(i) for i in range(2_500)]
    await publish(store, [server], alerts[:2_000])
    subscribed = asyncio.Event()

    async def keep_publishing() -> None:
        await subscribed.wait()
        for alert in alerts[2_000:]:
            await publish(store, [server], [alert])
            await asyncio.sleep(0)

    publisher = asyncio.create_task(keep_publishing())
    # A small receive buffer and no compression: the replay fills the socket and has to
    # wait for this client, and live alerts arrive meanwhile (held, then deduplicated).
    ws = await connect(
        f"{server.url}?since={alerts[9].alert_id}",
        additional_headers=AUTH,
        compression=None,
        sock=await small_buffer_socket(server.port),
    )
    await ws.send(json.dumps({"type": "subscribe", "filter": {}}))
    subscribed.set()
    got = await read_alerts(ws, len(alerts) - 10)
    await publisher
    await ws.close()
    assert got == ids(alerts[10:])


async def test_a_client_that_does_not_read_is_cut_off_while_others_keep_receiving(
    store: AlertStore,
) -> None:
    srv = make_server(store, queue_size=64, send_timeout_s=0.5, close_timeout_s=0.5)
    await srv.start()
    before = DISCONNECTS.labels("slow_consumer")._value.get()
    reader = await subscribe(srv.url)
    # Never reads: max_queue=1, no compression and a tiny receive buffer fill up at once.
    stalled = await subscribe(
        srv.url, max_queue=1, compression=None, sock=await small_buffer_socket(srv.port)
    )
    received: list[str] = []

    async def read_everything() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in reader:
                body = json.loads(message)
                if body["type"] == "alert":
                    received.append(body["alert"]["alert_id"])

    reading = asyncio.create_task(read_everything())
    published: list[str] = []
    try:
        for batch in range(2_000):  # until the server gives up on the stalled client
            alerts = [sample_alert(batch * 16 + i) for i in range(16)]
            await publish(store, [srv], alerts)
            published += ids(alerts)
            await asyncio.sleep(0.002)
            if srv.subscriber_count == 1:
                break
        assert srv.subscriber_count == 1, "the stalled client was never cut off"
        assert DISCONNECTS.labels("slow_consumer")._value.get() - before == 1
        last = [sample_alert(10**6 + i) for i in range(3)]
        await publish(store, [srv], last)
        published += ids(last)
        await eventually(lambda: len(received) >= len(published), "the reader got everything")
        assert received == published
    finally:
        reading.cancel()
        await reader.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stalled.close(), 1)
        await srv.stop()


async def test_a_subscriber_through_a_server_restart_misses_nothing_and_sees_nothing_twice(
    tmp_path: Path,
) -> None:
    """The monitor restarts over the same ledger file: a new process, a new connection."""
    path = tmp_path / "ledger.sqlite"
    first = Ledger(path).open()
    reopened: list[Ledger] = []

    def restart() -> AlertStore:
        first.close()
        reopened.append(Ledger(path).open())
        return reopened[-1].alerts

    try:
        await restart_scenario(first.alerts, restart)
    finally:
        for ledger in reopened:
            ledger.close()


async def test_restart_scenario_in_memory() -> None:
    store = MemoryAlertStore()
    await restart_scenario(store, lambda: store)


async def restart_scenario(first_store: AlertStore, restart: Callable[[], AlertStore]) -> None:
    """Server A on `first_store` is stopped; `restart()` gives the store of server B (same
    port, same ledger reopened); a reconnecting client sees every alert exactly once."""
    alerts = [sample_alert(i) for i in range(10)]
    server_a = make_server(first_store)
    await server_a.start()
    port = server_a.port
    client = AlertClient(server_a.url, TOKEN, AlertFilter(), backoff_initial_s=0.05)
    got: list[Received] = []

    async def collect() -> None:
        async for item in client.alerts():
            got.append(item)
            if len(got) == len(alerts):
                return

    task = asyncio.create_task(collect())
    try:
        await eventually(lambda: server_a.subscriber_count == 1, "client subscribed to A")
        await publish(first_store, [server_a], alerts[:5])
        await eventually(lambda: len(got) == 5, "5 alerts through server A")
        await publish(first_store, [server_a], alerts[4:5])  # a repeat before the restart
        await server_a.stop()
        second_store = restart()
        await publish(second_store, [], alerts[5:8])  # emitted while no server listened
        server_b = make_server(second_store, port=port)
        await server_b.start()
        try:
            await eventually(lambda: server_b.subscriber_count == 1, "client back on B")
            await publish(second_store, [server_b], alerts[8:])
            await asyncio.wait_for(task, 10)
        finally:
            await server_b.stop()
    finally:
        task.cancel()
    assert [r.alert.alert_id for r in got] == ids(alerts)
    assert client.connects == 2


async def test_the_client_reports_a_refusal_instead_of_retrying(
    server: SubscriptionServer,
) -> None:
    client = AlertClient(server.url, "hmt_not-a-token", backoff_initial_s=0.01)
    with pytest.raises(SubscriptionRefused, match="HTTP 401: unknown token"):
        async for _ in client.alerts():
            pass
