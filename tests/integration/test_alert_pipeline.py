"""The detect pipeline with subscriptions configured: ticks on the bus -> detection ->
ledger -> webhook and websocket subscribers, through `make_pipeline` as `run` builds it."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from monitor.alerts.tokens import new_token, token_hash
from monitor.app import Pipeline, make_pipeline
from monitor.ledger.ledger import Ledger
from monitor.portfolio import parse_portfolio
from monitor.settings import Settings, load_settings
from streams.ticks import Tick, encode_tick, tick_key
from tests.alerting import eventually
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
