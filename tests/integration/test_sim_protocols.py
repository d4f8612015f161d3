"""The simulated Coinbase and Kraken speak their venue's protocol to any websocket client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streams.simulator.coinbase import CoinbaseSimulator
from streams.simulator.kraken import KrakenSimulator

SYMBOLS = ["BTC/USD", "ETH/USD"]


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_coinbase_closes_a_connection_that_does_not_subscribe_in_time() -> None:
    sim = CoinbaseSimulator(SYMBOLS, subscribe_timeout_s=0.1)
    async with sim, connect(sim.url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_coinbase_acks_then_sends_a_snapshot_with_sequence_numbers() -> None:
    async with CoinbaseSimulator(SYMBOLS, tick_interval_ms=1000) as sim, connect(sim.url) as ws:
        request = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "ticker"}
        await ws.send(json.dumps(request))
        ack, snapshot = await recv(ws), await recv(ws)
    assert (ack["channel"], ack["sequence_num"], ack["events"][0]["subscriptions"]) == (
        "subscriptions",
        0,
        {"ticker": ["BTC-USD"]},
    )
    event = snapshot["events"][0]
    assert (snapshot["sequence_num"], event["type"], event["tickers"][0]["product_id"]) == (
        1,
        "snapshot",
        "BTC-USD",
    )


async def test_coinbase_answers_an_unknown_product_with_an_error() -> None:
    async with CoinbaseSimulator(SYMBOLS) as sim, connect(sim.url) as ws:
        request = {"type": "subscribe", "product_ids": ["XYZ-USD"], "channel": "ticker"}
        await ws.send(json.dumps(request))
        reply = await recv(ws)
    assert reply["type"] == "error" and "XYZ-USD" in reply["message"]


async def test_coinbase_heartbeats_count_up() -> None:
    sim = CoinbaseSimulator(SYMBOLS, heartbeat_interval_s=0.02)
    async with sim, connect(sim.url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats"}))
        await recv(ws)  # the subscriptions ack
        beats = [await recv(ws) for _ in range(2)]
    counters = [b["events"][0]["heartbeat_counter"] for b in beats]
    assert ([b["channel"] for b in beats], counters) == (["heartbeats"] * 2, [1, 2])


async def test_kraken_greets_with_status_and_acks_each_symbol() -> None:
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=1000) as sim, connect(sim.url) as ws:
        status = await recv(ws)
        params = {"channel": "ticker", "symbol": ["BTC/USD", "DOGE/USD"], "snapshot": False}
        await ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": 4}))
        acks = [await recv(ws) for _ in range(2)]
    assert (status["channel"], status["data"][0]["system"]) == ("status", "online")
    assert [(a["success"], a["req_id"]) for a in acks] == [(True, 4), (False, 4)]
    assert acks[1]["error"] == "Currency pair not supported DOGE/USD"


async def test_kraken_answers_its_ping_with_a_pong() -> None:
    async with KrakenSimulator(SYMBOLS) as sim, connect(sim.url) as ws:
        await recv(ws)
        await ws.send(json.dumps({"method": "ping", "req_id": 7}))
        pong = await recv(ws)
    assert (pong["method"], pong["req_id"], "time_out" in pong) == ("pong", 7, True)


async def test_kraken_ticker_numbers_are_json_numbers() -> None:
    async with KrakenSimulator(SYMBOLS, tick_interval_ms=10) as sim, connect(sim.url) as ws:
        await recv(ws)
        params = {"channel": "ticker", "symbol": ["ETH/USD"]}
        await ws.send(json.dumps({"method": "subscribe", "params": params}))
        await recv(ws)  # ack
        snapshot = await recv(ws)
    item = snapshot["data"][0]
    assert (snapshot["type"], type(item["last"]), type(item["bid"])) == ("snapshot", float, float)


async def test_kraken_serves_only_the_v2_path() -> None:
    async with KrakenSimulator(SYMBOLS) as sim:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(sim.url.removesuffix("/v2") + "/v1"):
                pass
    assert refused.value.response.status_code == 404
