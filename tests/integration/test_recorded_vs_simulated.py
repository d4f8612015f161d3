"""Each simulator speaks the recorded real shapes: for every recorded tick-bearing message
(tests/fixtures/venues), the simulator's message of the same kind has the same fields, and,
given the recorded message's symbol, price and time, the feed reads the same Tick from it.

The simulator's message is taken off a real loopback connection; its symbol, price and
time fields are replaced by the recorded ones (every other field stays the simulator's),
so the comparison shows that nothing else in the simulator's shape changes the Tick.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import connect

from streams.simulator.binance import BinanceSimulator
from streams.simulator.coinbase import CoinbaseSimulator
from streams.simulator.kraken import KrakenSimulator
from tests.venue_corpus import RECV, Recorded, recorded, session

TICKING = [r for r in recorded() if r.expect]


def _as_numbers(value: Any) -> Any:
    """Decimals back to JSON numbers with their digits (msgspec would write strings)."""
    if isinstance(value, Decimal):
        return msgspec.Raw(str(value).encode())
    if isinstance(value, dict):
        return {k: _as_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_numbers(v) for v in value]
    return value


_exact = msgspec.json.Decoder(float_hook=Decimal)


def _kraken_decode(raw: str | bytes) -> Any:
    return _exact.decode(raw)


async def _binance(rec: Recorded) -> str:
    real = json.loads(rec.raw)
    combined = "stream" in real
    stream = "btcusdt@" + rec.channel
    path = f"/stream?streams={stream}" if combined else f"/ws/{stream}"
    async with (
        BinanceSimulator(["BTC/USDT"], tick_interval_ms=5) as sim,
        connect(sim.url + path) as ws,
    ):
        message = json.loads(await ws.recv())
    event, real_event = (message["data"], real["data"]) if combined else (message, real)
    assert set(event) == set(real_event)
    for key in ("s", "p", "T", "E", "t", "a"):
        if key in real_event:
            event[key] = real_event[key]
    if combined:
        assert set(message) == set(real)
        message["stream"] = real["stream"]
    return json.dumps(message)


async def _coinbase(rec: Recorded) -> str:
    real = json.loads(rec.raw)
    async with (
        CoinbaseSimulator(
            ["BTC/USD"], tick_interval_ms=5, batch_interval_s=0.02, empty_ticker_every=0
        ) as sim,
        connect(sim.url) as ws,
    ):
        request = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": rec.channel}
        await ws.send(json.dumps(request))
        while (message := json.loads(await ws.recv()))["channel"] != rec.channel:
            pass
    assert set(message) == set(real)
    ticker, real_ticker = message["events"][0]["tickers"][0], real["events"][0]["tickers"][0]
    assert set(ticker) == set(real_ticker)
    message["timestamp"] = real["timestamp"]
    for key in ("product_id", "price", "best_bid", "best_ask"):
        if key in real_ticker:
            ticker[key] = real_ticker[key]
    return json.dumps(message)


async def _kraken(rec: Recorded) -> bytes:
    real = _kraken_decode(rec.raw)
    async with KrakenSimulator(["BTC/USD"], tick_interval_ms=5) as sim, connect(sim.url) as ws:
        params = {"channel": rec.channel, "symbol": ["BTC/USD"], "snapshot": False}
        await ws.send(json.dumps({"method": "subscribe", "params": params}))
        while (message := _kraken_decode(await ws.recv())).get("channel") != rec.channel:
            pass
    assert set(message) == set(real)
    item, real_item = message["data"][0], real["data"][0]
    assert set(item) == set(real_item)
    keys = ("symbol", "last", "bid", "ask", "timestamp", "price", "trade_id")
    for key in keys:
        if key in real_item:
            item[key] = real_item[key]
    encoded: bytes = msgspec.json.encode(_as_numbers(message))
    return encoded


COUNTERPARTS: dict[str, Callable[[Recorded], Any]] = {
    "binance": _binance,
    "coinbase": _coinbase,
    "kraken": _kraken,
}


@pytest.mark.parametrize("rec", TICKING, ids=lambda r: r.id)
async def test_the_simulators_message_gives_the_same_tick_as_the_recorded_one(
    rec: Recorded,
) -> None:
    assert rec.expect is not None
    simulated = await COUNTERPARTS[rec.venue](rec)
    raw = simulated if isinstance(simulated, bytes) else simulated.encode()
    real_session, _ = session(rec.venue, rec.channel, rec.expect["symbol"])
    sim_session, _ = session(rec.venue, rec.channel, rec.expect["symbol"])
    real_tick = real_session.handle(rec.raw.encode(), RECV)
    sim_tick = sim_session.handle(raw, RECV)
    assert isinstance(real_tick, list) and len(real_tick) == 1
    assert sim_tick == real_tick
