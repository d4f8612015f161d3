"""Issue 10: records on the real broker's ticks topic that are no market price (1e-300,
0.0001 after a 90,000 consensus, a one-tick 47,000) reach the detect role and are
neither alerted nor traded (paper mode, with its ledger).

Real parts: the session's Kafka-protocol broker (tansu), the detect role's consumer,
detection, the ledger and the paper executor. The ticks are published as `ingest`
would publish them (keyed by base asset, the tick codec).
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.app import make_pipeline
from monitor.ledger.startup import open_ledger_lots
from monitor.settings import load_settings
from streams.ticks import Tick, encode_tick, tick_key

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L1,acct-1,w-1,BTC,1,90000,2026-06-01
"""


def scenario(t0_ms: int) -> list[Tick]:
    """Three venues at 90,000 for 20 s; Kraken alone to 70 s, with its bad prints."""
    rows: list[tuple[str, str, float, int]] = []
    for s in range(21):
        rows.append(("binance", "BTC/USDT", 90_000.0, s))
        rows.append(("coinbase", "BTC/USD", 90_010.0, s))
    for s in range(71):
        rows.append(
            ("kraken", "BTC/USD", {61: 1e-300, 62: 0.0001, 63: 47_000.0}.get(s, 90_005.0), s)
        )
    rows.sort(key=lambda r: r[3])
    out = []
    for venue, symbol, price, s in rows:
        base, quote = symbol.split("/")
        ts = t0_ms + s * 1000
        out.append(Tick(venue, symbol, base, quote, price, ts, ts * 1_000_000))
    return out


async def eventually(what: str, check: Callable[[], bool], limit_s: float = 30.0) -> None:
    try:
        async with asyncio.timeout(limit_s):
            while not check():  # noqa: ASYNC110 - the state belongs to the pipeline's tasks
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {limit_s} s: {what}") from None


@pytest.mark.timeout(120)
async def test_bad_tick_records_alert_and_trade_nothing(kafka_broker: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    (tmp_path / "p.csv").write_text(PORTFOLIO, encoding="utf-8")
    settings = load_settings(
        env={},
        overrides={
            "portfolio.path": str(tmp_path / "p.csv"),
            "ledger.path": str(tmp_path / "ledger.sqlite"),
            "kafka.bootstrap_servers": kafka_broker,
            "kafka.ticks_topic": f"bad.ticks.{run}",
            "kafka.alerts_topic": f"bad.alerts.{run}",
            "kafka.group_id": f"bad-detect-{run}",
            "kafka.partitions": 1,
            "kafka.session_timeout_ms": 1000,
            "kafka.heartbeat_interval_ms": 100,
            "metrics.port": 0,
            "execution.mode": "paper",
            "execution.max_alert_age_s": 0,
            "execution.kill_switch_file": str(tmp_path / "KILL"),
        },
    )
    ledger, lots = open_ledger_lots(settings)
    stdout = io.BytesIO()
    pipeline = make_pipeline(
        settings, lots, ingest=False, status_out=None, stdout=stdout, ledger=ledger
    )
    detector = pipeline.detector
    assert detector is not None
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop.wait))
    await pipeline.bus.ensure_topics([settings.kafka.ticks_topic, settings.kafka.alerts_topic])
    producer = pipeline.bus.producer()
    await producer.start()
    topic = settings.kafka.ticks_topic

    async def publish(ticks: list[Tick]) -> None:
        await producer.publish_many(topic, [(tick_key(t), encode_tick(t)) for t in ticks])
        await producer.flush()

    t0 = int(time.time() * 1000) - 120_000
    try:
        # The detect consumer starts at the log's end: ETH ticks (no lots) until it reads.
        async with asyncio.timeout(30):
            while detector.ticks_seen == 0:
                now = int(time.time() * 1000)
                await publish([Tick("kraken", "ETH/USD", "ETH", "USD", 3000.0, now, now * 10**6)])
                await asyncio.sleep(0.2)
        seen = detector.ticks_seen
        ticks = scenario(t0)
        await publish(ticks)
        await eventually("every BTC record read", lambda: detector.ticks_seen >= seen + len(ticks))
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(task, 20)
    assert [json.loads(line) for line in stdout.getvalue().splitlines()] == []
    board = detector.prices
    assert board.rejected.get(("kraken", "below_min")) == 1  # 1e-300
    assert board.rejected.get(("kraken", "absurd_jump")) == 1  # 0.0001 after 90,000
    ledger.open()  # the pipeline closed it on the way out
    assert ledger.intents.counts().get("done", 0) == 0
    assert ledger.disposals() == []
    ledger.close()
