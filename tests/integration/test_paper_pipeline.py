"""The daemon's pipeline in paper mode: bus -> detection -> executor task -> ledger, and
the live lot book following each fill (sold lots gone, rebuy lots alerting in turn)."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from monitor.app import make_pipeline
from monitor.ledger.startup import open_ledger_lots
from monitor.settings import load_settings
from streams.ticks import Tick, encode_tick, tick_key
from tests.alerting import eventually

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
A1,acct-a,cb-1,BTC,2,100000,2024-01-10
B1,acct-b,bn-1,BTC,1,60000,2024-06-01
"""


def btc_tick(price: float) -> Tick:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return Tick("binance", "BTC/USDT", "BTC", "USDT", price, now_ms, now_ms * 1_000_000)


async def test_fills_update_the_running_book(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(PORTFOLIO, encoding="utf-8")
    settings = load_settings(
        env={},
        overrides={
            "portfolio.path": str(tmp_path / "p.csv"),
            "ledger.path": str(tmp_path / "ledger.sqlite"),
            "metrics.port": 0,
            # A single-venue deployment whose price is acted on at once: min_venues is 1.
            "feeds": [{"venue": "binance"}],
            "prices.hold_s": 0,
            "execution.mode": "paper",
            "execution.max_harvest_usd": 0,
            "execution.max_daily_usd": 0,
            "execution.poll_interval_s": 0.05,
            "execution.kill_switch_file": str(tmp_path / "KILL"),
        },
    )
    ledger, lots = open_ledger_lots(settings)
    stdout = io.BytesIO()
    pipeline = make_pipeline(
        settings, lots, ingest=False, status_out=None, stdout=stdout, ledger=ledger
    )
    assert pipeline.executor is not None and pipeline.detector is not None
    assert pipeline.sinks[-1].name == "executor"
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop.wait))
    await pipeline.bus.ensure_topics([settings.kafka.ticks_topic, settings.kafka.alerts_topic])
    producer = pipeline.bus.producer()
    await producer.start()

    async def tick(price: float) -> None:
        t = btc_tick(price)
        await producer.publish_many(settings.kafka.ticks_topic, [(tick_key(t), encode_tick(t))])
        await producer.flush()

    def done() -> int:
        return ledger.intents.counts()["done"]

    try:  # running once the executor has recovered (its cursor is set): consumers are up
        await eventually(lambda: ledger.alerts.cursor("executor") is not None, "started")
        await tick(40_000.0)  # both lots far under water: two harvests, two rebuys
        await eventually(lambda: done() == 2, "both harvests executed")
        book = pipeline.detector.book
        held = sorted(book.frame["lot_id"].to_list())
        assert "A1" not in held and "B1" not in held and len(held) == 2
        await tick(39_000.0)  # the rebuy lots' basis is ~40000: 2.5% under is no harvest
        await tick(37_000.0)  # 7.5% under: the rebuy lots harvest in their turn
        await eventually(lambda: done() == 4, "the rebuy lots harvested")
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(task, 20)
    alerts = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [a["lot_ids"] for a in alerts[:2]] == [["A1"], ["B1"]]
    assert all(lot.endswith("-rebuy") for a in alerts[2:] for lot in a["lot_ids"])
    assert len(alerts) == 4
    ledger.open()  # the pipeline closed it on the way out
    assert sorted(d.lot_id for d in ledger.disposals())[:2] == ["A1", "B1"]
    ledger.close()
