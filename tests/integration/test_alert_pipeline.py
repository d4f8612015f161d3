"""The detect pipeline with subscriptions configured: ticks on the bus -> detection ->
ledger -> webhook and websocket subscribers, through `make_pipeline` as `run` builds it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from monitor.alerts.client import AlertClient, Received
from monitor.alerts.filter import AlertFilter
from monitor.alerts.interface import AlertSink
from monitor.alerts.jsonl import JsonLinesSink
from monitor.alerts.outbox import WebhookSink
from monitor.alerts.recording import REPEATED, RecordingSink
from monitor.alerts.subscriptions import SubscriptionServer
from monitor.alerts.tokens import new_token, token_hash
from monitor.app import Pipeline, emit, make_pipeline
from monitor.ledger.ledger import Ledger
from monitor.metrics import SINK_ERRORS
from monitor.portfolio import parse_portfolio
from monitor.settings import Settings, load_settings
from streams.ticks import Tick, encode_tick, tick_key
from tests.alerting import eventually, sample_alert
from tests.webhook_receiver import SECRET, Receiver

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2024-01-10
B1,acct-b,bn-1,BTC,1,60000,2024-06-01
"""
TOKEN = new_token()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(tmp_path: Path, hook_url: str, ws_port: int) -> Settings:
    return load_settings(
        env={},
        overrides={
            "ledger.path": str(tmp_path / "ledger.sqlite"),
            "metrics.port": 0,
            "prices.hold_s": 0,  # one venue's ticks, acted on at once: delivery is tested here
            "alerts.stdout": True,
            "webhooks": [{"name": "hook", "url": hook_url, "secret_env": "TEST_HOOK_SECRET"}],
            "subscriptions.websocket_port": ws_port,
            "subscriptions.tokens": [{"name": "ops", "sha256": token_hash(TOKEN)}],
        },
    )


def btc_tick(price: float) -> Tick:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return Tick("binance", "BTC/USDT", "BTC", "USDT", price, now_ms, now_ms * 1_000_000)


async def running(pipeline: Pipeline) -> tuple[asyncio.Task[None], Callable[[], Awaitable[None]]]:
    stop = asyncio.Event()

    async def until() -> None:
        await stop.wait()

    task = asyncio.create_task(pipeline.run(until))

    async def finish() -> None:
        stop.set()
        await asyncio.wait_for(task, 20)

    return task, finish


async def test_alerts_are_recorded_then_reach_webhook_and_websocket_subscribers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET.decode())
    receiver = Receiver()
    await receiver.start()
    ws_port = free_port()
    settings = settings_for(tmp_path, receiver.url, ws_port)
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    url = f"ws://127.0.0.1:{ws_port}/v1/alerts"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reader = Ledger(settings.ledger.path)  # a second connection, as another process would
    recorded_first: list[bool] = []

    def script(alert_id: str, _tries: int) -> tuple[int, dict[str, str]]:
        recorded_first.append(reader.alerts.alert(alert_id) is not None)
        return 200, {}

    receiver.script = script
    stdout = io.BytesIO()
    pipeline = make_pipeline(settings, lots, ingest=False, status_out=None, stdout=stdout)
    # the recorder goes first: a since= replay racing this emit must find the alert
    assert [s.name for s in pipeline.sinks][:3] == ["ledger", "webhook:hook", "websocket"]
    task, finish = await running(pipeline)
    try:
        await eventually(lambda: Path(settings.ledger.path).exists(), "ledger opened")
        reader.open()
        ws = None
        for _ in range(200):  # the server starts with the pipeline
            try:
                ws = await connect(url, additional_headers=auth)
                break
            except OSError:
                await asyncio.sleep(0.02)
        assert ws is not None and not task.done()
        await ws.send(json.dumps({"type": "subscribe", "filter": {"accounts": ["acct-b"]}}))
        assert json.loads(await ws.recv())["type"] == "subscribed"  # live from here on
        producer = pipeline.bus.producer()
        await producer.start()
        tick = btc_tick(40_000.0)
        await producer.publish_many(
            settings.kafka.ticks_topic, [(tick_key(tick), encode_tick(tick))]
        )
        await producer.flush()
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while not got:
                message = json.loads(await ws.recv())
                if message["type"] == "alert":
                    got.append(message["alert"])
        await eventually(lambda: len(receiver.accepted) == 2, "both alerts at the webhook")
        await producer.stop()
        await ws.close()
    finally:
        await finish()
        await receiver.stop()
    emitted = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(a["account"] for a in emitted) == ["acct-a", "acct-b"]
    assert [a["account"] for a in got] == ["acct-b"]  # the subscriber's filter
    assert set(receiver.accepted) == {a["alert_id"] for a in emitted}
    assert recorded_first == [True, True]  # in the ledger before any subscriber saw it
    assert receiver.bad_signatures == 0
    stored = reader.alerts.alerts_since("2000-01-01T00:00:00Z")
    assert {s.alert_id for s in stored} == {a["alert_id"] for a in emitted}
    assert reader.alerts.dead_letters() == []
    reader.close()


async def test_a_subscriber_connected_through_a_monitor_restart_misses_nothing_twice_nothing(
    tmp_path: Path,
) -> None:
    """Pipeline A stops, pipeline B starts over the same ledger (the lots climb back and
    re-arm, so they alert again at a new price): the tail client sees all four alerts
    exactly once."""
    ws_port = free_port()
    settings = settings_for(tmp_path, "http://127.0.0.1:9/unused", ws_port)
    harvest = settings.harvest.model_copy(update={"cooldown_s": 0.0})
    settings = settings.model_copy(update={"webhooks": [], "harvest": harvest})
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    client = AlertClient(
        f"ws://127.0.0.1:{ws_port}/v1/alerts", TOKEN, AlertFilter(), backoff_initial_s=0.2
    )
    got: list[Received] = []

    async def collect() -> None:
        async for item in client.alerts():
            got.append(item)

    async def one_tick(pipeline: Pipeline, *prices: float) -> None:
        await pipeline.bus.ensure_topics([settings.kafka.ticks_topic])  # run() may be starting
        producer = pipeline.bus.producer()
        await producer.start()
        ticks = [btc_tick(price) for price in prices]
        await producer.publish_many(
            settings.kafka.ticks_topic, [(tick_key(t), encode_tick(t)) for t in ticks]
        )
        await producer.flush()
        await producer.stop()

    first = make_pipeline(settings, lots, ingest=False, status_out=None, stdout=io.BytesIO())
    server_a = first.sinks[1]
    assert isinstance(server_a, SubscriptionServer)
    _, finish_first = await running(first)
    await eventually(lambda: server_a.listening, "A started (its consumer is running)")
    reading = asyncio.create_task(collect())
    try:
        await eventually(lambda: server_a.subscriber_count == 1, "tail subscribed to A")
        await one_tick(first, 40_000.0)
        await eventually(lambda: len(got) == 2, "two alerts before the restart")
        await finish_first()
        second = make_pipeline(settings, lots, ingest=False, status_out=None, stdout=io.BytesIO())
        server_b = second.sinks[1]
        assert isinstance(server_b, SubscriptionServer)
        _, finish_second = await running(second)
        try:
            await eventually(lambda: server_b.listening, "B started (its consumer is running)")
            await one_tick(second, 70_000.0, 39_000.0)  # most likely before the client is back
            await eventually(lambda: len(got) == 4, "two more alerts after the restart")
        finally:
            await finish_second()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    ids = [r.alert.alert_id for r in got]
    assert len(set(ids)) == 4
    assert [r.alert.price for r in got] == ["40000", "40000", "39000", "39000"]
    ledger = Ledger(settings.ledger.path).open()
    stored = [s.alert_id for s in ledger.alerts.alerts_since("2000-01-01T00:00:00Z")]
    ledger.close()
    assert stored == ids  # the ledger's order is the order the subscriber saw
    assert client.connects == 2


async def test_alerts_detected_again_after_a_restart_are_sent_to_no_one_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipeline B restarts over A's ledger and processes A's tick again (as after a crash
    before the Kafka offsets were committed): the lots' alert state came back from the
    ledger, so nothing is detected again, and neither stdout nor the webhook gets anything
    twice (the ledger's gate for ids it knows is tested below). After a climb back that
    re-arms the lots, a new price still goes out everywhere."""
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET.decode())
    receiver = Receiver()
    await receiver.start()
    settings = settings_for(tmp_path, receiver.url, 0)
    harvest = settings.harvest.model_copy(update={"cooldown_s": 0.0})
    settings = settings.model_copy(update={"harvest": harvest})
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    tick = btc_tick(40_000.0)
    repeated_before = REPEATED._value.get()

    async def run_ticks(ticks: list[Tick]) -> tuple[Pipeline, list[dict[str, Any]]]:
        stdout = io.BytesIO()
        pipeline = make_pipeline(settings, lots, ingest=False, status_out=None, stdout=stdout)
        hook = pipeline.sinks[1]
        assert isinstance(hook, WebhookSink)
        _, finish = await running(pipeline)
        try:
            await eventually(lambda: hook.running, "started (sinks start after the consumer)")
            producer = pipeline.bus.producer()
            await producer.start()
            await producer.publish_many(
                settings.kafka.ticks_topic, [(tick_key(t), encode_tick(t)) for t in ticks]
            )
            await producer.flush()
            await producer.stop()
            await eventually(
                lambda: pipeline.counters.ticks_detected == len(ticks), "ticks detected"
            )
            await hook.drain()
        finally:
            await finish()
        return pipeline, [json.loads(line) for line in stdout.getvalue().splitlines()]

    try:
        first, out_a = await run_ticks([tick])
        second, out_b = await run_ticks([tick])  # the same tick, processed again
        third, out_c = await run_ticks([btc_tick(70_000.0), btc_tick(39_000.0)])  # re-armed
    finally:
        await receiver.stop()
    assert len(out_a) == 2 and first.counters.alerts == 2
    assert out_b == [] and second.counters.alerts == 0
    assert [a["price"] for a in out_c] == ["39000", "39000"] and third.counters.alerts == 2
    assert REPEATED._value.get() - repeated_before == 0  # not even detected again
    assert receiver.accepted == Counter({a["alert_id"]: 1 for a in out_a + out_c})
    assert receiver.order == [a["alert_id"] for a in out_a + out_c]


async def test_emit_passes_on_only_the_alerts_new_to_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    out = io.BytesIO()
    sinks: list[AlertSink] = [RecordingSink(ledger.alerts), JsonLinesSink(stream=out)]
    a, b = sample_alert(1), sample_alert(2)
    try:
        assert await emit(sinks, [a], time.time_ns()) == 1
        assert await emit(sinks, [a, b], time.time_ns()) == 1  # a is known: only b goes on
        assert await emit(sinks, [b, a], time.time_ns()) == 0
    finally:
        ledger.close()
    printed = [json.loads(line)["alert_id"] for line in out.getvalue().splitlines()]
    assert printed == [a.alert_id, b.alert_id]


async def test_a_ledger_that_cannot_record_does_not_stop_the_other_sinks(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    ledger.close()  # every call now fails with LedgerError
    out = io.BytesIO()
    sinks: list[AlertSink] = [RecordingSink(ledger.alerts), JsonLinesSink(stream=out)]
    before = SINK_ERRORS.labels("ledger")._value.get()
    alert = sample_alert(1)
    assert await emit(sinks, [alert], time.time_ns()) == 1
    assert json.loads(out.getvalue())["alert_id"] == alert.alert_id
    assert SINK_ERRORS.labels("ledger")._value.get() - before == 1
