"""The detect pipeline as `run` builds it (bus -> detection -> ledger -> stdout) keeps each
lot's alert state in the ledger while it runs: with the alert that changed it, and a
re-arm that raised no alert within about a second, before any stop."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

from monitor.app import make_pipeline
from monitor.ledger.ledger import Ledger
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.stages import STATE_FLUSH_S
from streams.ticks import Tick, encode_tick, tick_key
from tests.alerting import eventually

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2024-01-10
B1,acct-b,bn-1,BTC,1,60000,2024-06-01
"""


def btc_tick(price: float) -> Tick:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return Tick("binance", "BTC/USDT", "BTC", "USDT", price, now_ms, now_ms * 1_000_000)


async def test_the_running_pipeline_writes_alert_state_and_rearms(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    settings = load_settings(
        env={},
        overrides={
            "ledger.path": str(path),
            "metrics.port": 0,
            "alerts.stdout": True,
            "prices.hold_s": 0,  # one venue's ticks, acted on at once: alert state is tested
        },
    )
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "test.csv")
    stdout = io.BytesIO()
    ledger = Ledger(path)
    pipeline = make_pipeline(
        settings, lots, ingest=False, status_out=None, stdout=stdout, ledger=ledger
    )
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop.wait))
    reader = Ledger(path)

    def armed() -> dict[str, bool]:
        return {lot: bool(a) for lot, a, _, _ in reader.alerts.lot_state().rows()}

    async def send(price: float) -> None:
        producer = pipeline.bus.producer()
        await producer.start()
        tick = btc_tick(price)
        await producer.publish_many(
            settings.kafka.ticks_topic, [(tick_key(tick), encode_tick(tick))]
        )
        await producer.flush()
        await producer.stop()

    try:
        await eventually(lambda: path.exists(), "ledger opened")
        reader.open()
        await send(40_000.0)  # both lots cross: two alerts, both lots disarmed
        await eventually(lambda: armed() == {"A1": False, "B1": False}, "state with the alerts")
        assert len(stdout.getvalue().splitlines()) == 2
        await send(70_000.0)  # above both triggers * 1.02: re-armed, no alert
        await eventually(
            lambda: armed() == {"A1": True, "B1": True},
            "the re-arm written while running",
            within_s=STATE_FLUSH_S + 5,
        )
        assert not task.done() and len(stdout.getvalue().splitlines()) == 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        reader.close()
