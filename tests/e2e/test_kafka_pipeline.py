"""End to end through real parts: simulated Binance -> Binance feed -> Kafka -> detection ->
the alert read back from the alerts topic, with the expected lots and exact amounts.

The broker is the session's tansu (tests/conftest.py); the exchange is the project's
simulator on loopback, speaking Binance's protocol; the pipeline is the one `run` uses.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from decimal import Decimal

import pytest

from monitor.alerts.schema import Alert, cents, decode_alert
from monitor.app import make_pipeline
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.bus.kafka import LOCAL_BROKER_GROUP_TIMING, KafkaBus
from streams.simulator.binance import BinanceSimulator

# BTC starts at 90,000 in the simulated universe. K1 and K2 (same account and wallet)
# are deep under water and must come as one alert; K3 (another wallet) as another;
# K4 is in profit and must never appear; E1 is ETH, whose price is left alone.
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
K1,acct-1,w-1,BTC,0.5,80000,2026-09-01
K2,acct-1,w-1,BTC,0.25,40000,2026-10-01
K3,acct-2,w-9,BTC,1,150000,2026-08-15
K4,acct-1,w-1,BTC,1,20000,2024-01-01
E1,acct-1,w-1,ETH,1,1000,2026-01-01
"""


def check_amounts(alert: Alert, rate: Decimal, cost_rate: Decimal, basis: Decimal) -> None:
    """Every money field of `alert` follows from its quantity and price, to the cent."""
    qty = Decimal(alert.quantity)
    price = Decimal(alert.price)
    proceeds = qty * price
    loss = basis - proceeds
    tax = rate * loss
    cost = cost_rate * proceeds
    assert alert.cost_basis_usd == cents(basis)
    assert alert.proceeds_usd == cents(proceeds)
    assert alert.loss_usd == cents(loss)
    assert alert.short_term_loss_usd == cents(loss)
    assert alert.long_term_loss_usd == "0.00"
    assert alert.tax_savings_usd == cents(tax)
    assert alert.cost_usd == cents(cost)
    assert alert.net_benefit_usd == cents(tax - cost)


async def read_alerts(bus: KafkaBus, topic: str, want: int, timeout_s: float) -> list[Alert]:
    consumer = bus.consumer([topic], f"reader-{uuid.uuid4().hex[:8]}", from_beginning=True)
    await consumer.start()
    found: list[Alert] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(found) < want:
                for record in await consumer.get_batch(100, 0.5):
                    found.append(decode_alert(record.value))
    finally:
        await consumer.stop()
    return found


@pytest.mark.timeout(90)
async def test_simulated_exchange_through_kafka_to_an_alert(kafka_broker: str) -> None:
    run = uuid.uuid4().hex[:8]
    settings = load_settings(
        overrides={
            "kafka.bootstrap_servers": kafka_broker,
            "kafka.ticks_topic": f"e2e.ticks.{run}",
            "kafka.alerts_topic": f"e2e.alerts.{run}",
            "kafka.group_id": f"e2e-detect-{run}",
            "kafka.partitions": 2,
            "kafka.session_timeout_ms": 1000,
            "kafka.heartbeat_interval_ms": 100,
            "metrics.port": 0,
            "alerts.stdout": False,
            "feeds": [{"venue": "binance"}],
            # One venue: its price is acted on once it has persisted hold_s.
            "prices.hold_s": 2.0,
        }
    )
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "e2e.csv")
    reader_bus = KafkaBus(settings.kafka.bus_config(), group_timing=LOCAL_BROKER_GROUP_TIMING)
    # Calm markets, so the price stays near where the test puts it.
    async with BinanceSimulator(
        ["BTC/USDT", "ETH/USDT"], seed=3, tick_interval_ms=20, volatility_scale=0.01
    ) as sim:
        sim.set_price("BTC", 60_000.0)
        pipeline = make_pipeline(settings, lots, feed_urls={"binance": sim.url}, status_out=None)
        got: list[Alert] = []

        async def until() -> None:
            got.extend(await read_alerts(reader_bus, settings.kafka.alerts_topic, 2, 60))

        await pipeline.run(until)

    assert pipeline.counters.ticks_in > 0
    by_wallet = {(a.account, a.wallet): a for a in got}
    assert set(by_wallet) == {("acct-1", "w-1"), ("acct-2", "w-9")}
    first, second = by_wallet[("acct-1", "w-1")], by_wallet[("acct-2", "w-9")]
    assert first.asset == second.asset == "BTC"
    assert first.venue == "binance" and first.symbol == "BTC/USDT"
    assert sorted(first.lot_ids) == ["K1", "K2"]
    assert second.lot_ids == ["K3"]
    assert Decimal(first.quantity) == Decimal("0.75")
    assert Decimal(second.quantity) == Decimal("1")
    for alert in got:
        assert abs(Decimal(alert.price) - 60_000) < 600  # near where the market was put
        assert alert.alert_id.startswith("hma_")
        assert (alert.venues, alert.confirmed_by) == (1, "persistence")
    cost_rate = Decimal("0.003")  # 2 x (0.001 fee + 5 bps slippage)
    check_amounts(first, Decimal("0.37"), cost_rate, Decimal("120000"))
    check_amounts(second, Decimal("0.37"), cost_rate, Decimal("150000"))
