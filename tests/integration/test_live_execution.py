"""Live execution through the real ccxt client against a fake Binance REST API on loopback.

The crash tests kill the executor after the venue has taken the sell order and before
its reply is recorded, then restart it: the venue must hold exactly one sell, and the
ledger exactly one sale with the right lot events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.alerts.schema import Alert, alert_id, encode_alert
from monitor.execute.assembly import make_executor
from monitor.ledger import Ledger
from monitor.settings import Settings, load_settings
from tests.integration.binance_rest import FakeBinance

KEY = "test-api-key-0123"
SECRET = "test-api-secret-4567"
HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
LOTS = "L1,acct,w1,BTC,1,60000,2025-03-01\nL2,acct,w1,BTC,0.5,35000,2024-01-10\n"


@pytest.fixture
async def venue() -> AsyncIterator[FakeBinance]:
    fake = FakeBinance(KEY, SECRET)
    await fake.start()
    yield fake
    await fake.stop()


def harvest_alert() -> Alert:
    tick_ts = "2026-03-01T12:00:00.000Z"
    return Alert(
        alert_id=alert_id("harvest", "acct", "w1", "BTC", "L1,L2", "40000", tick_ts),
        account="acct",
        wallet="w1",
        asset="BTC",
        lot_ids=["L1", "L2"],
        quantity="1.5",
        price="40000",
        cost_basis_usd="95000.00",
        proceeds_usd="60000.00",
        loss_usd="35000.00",
        short_term_loss_usd="20000.00",
        long_term_loss_usd="15000.00",
        tax_savings_usd="10400.00",
        cost_usd="180.00",
        net_benefit_usd="10220.00",
        venue="binance",
        symbol="BTC/USDT",
        tick_ts=tick_ts,
        emitted_at=tick_ts,
        venues=3,
        confirmed_by="venues",
    )


def env_for(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    """The executor's settings as HM_ variables, and the keys as the exchange's."""
    env = {
        "HM_LEDGER__PATH": str(tmp_path / "ledger.sqlite"),
        "HM_EXECUTION__MODE": "live",
        "HM_EXECUTION__DRY_RUN": "false",
        "HM_EXECUTION__API_URL": url,
        "HM_EXECUTION__MAX_ALERT_AGE_S": "0",
        "HM_EXECUTION__RECOVERY_GRACE_S": "0",
        "HM_EXECUTION__POLL_INTERVAL_S": "0.05",
        "HM_EXECUTION__MAX_HARVEST_USD": "100000",
        "HM_EXECUTION__MAX_DAILY_USD": "100000",
        "HM_EXECUTION__KILL_SWITCH_FILE": str(tmp_path / "KILL"),
        "HM_EXCHANGE_API_KEY": KEY,
        "HM_EXCHANGE_API_SECRET": SECRET,
        "HM_LOG__FORMAT": "json",
    }
    env.update(extra)
    return env


def prepared_ledger(tmp_path: Path) -> Ledger:
    csv = tmp_path / "p.csv"
    csv.write_text(HEADER + LOTS, encoding="utf-8")
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    ledger.import_lots(csv)
    ledger.alerts.set_cursor("executor", 0)  # the executor has run on this ledger before
    a = harvest_alert()
    ledger.alerts.record_alerts([(a.alert_id, a.emitted_at, encode_alert(a))])
    return ledger


async def wait_until(check: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll state another process changes (the venue's order book)."""
    async with asyncio.timeout(limit_s):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def run_cli(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "execute",
        "--once",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def assert_one_harvest(venue: FakeBinance, ledger: Ledger) -> None:
    sides = sorted(o.side for o in venue.orders)
    assert sides == ["BUY", "SELL"]  # one sell, one rebuy: nothing sent twice
    [intent] = ledger.intents.in_states(("done",))
    assert [o.status for o in ledger.intents.orders()] == ["filled", "filled"]
    disposals = ledger.disposals(2026) or ledger.disposals()
    # 1.5 BTC at 40000 = 60000 USDT, less the 60 USDT commission: 59940 net, by quantity.
    assert [(d.lot_id, d.quantity, d.proceeds_usd) for d in disposals] == [
        ("L1", Decimal(1), Decimal(39960)),
        ("L2", Decimal("0.5"), Decimal(19980)),
    ]
    assert sum(d.cost_basis_usd - d.proceeds_usd for d in disposals) == Decimal(35060)
    assert ledger.lot_events("L1") == [("opened", "1", "60000"), ("closed", "1", "60000")]
    assert ledger.lot_events("L2") == [("opened", "0.5", "35000"), ("closed", "0.5", "35000")]
    # The rebuy's commission is taken in BTC: 1.5 - 0.0015 received, 60000 + 60 basis.
    [rebuy] = ledger.open_lots().iter_rows(named=True)
    assert rebuy["lot_id"] == f"{intent.intent_id}-rebuy"
    assert (rebuy["quantity"], rebuy["cost_basis_usd"]) == (Decimal("1.4985"), Decimal(60060))


async def test_a_killed_process_after_the_order_was_sent_sells_once(
    tmp_path: Path, venue: FakeBinance
) -> None:
    prepared_ledger(tmp_path).close()
    venue.hold()  # the venue takes the order and fills it; the reply never arrives
    first = await run_cli(env_for(tmp_path, venue.url))
    try:
        await wait_until(lambda: len(venue.orders) == 1)
    finally:
        first.kill()
        await first.wait()
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    [intent] = ledger.intents.in_states(("sell_submitted",))
    assert [o.status for o in ledger.intents.orders()] == ["submitting"]
    assert ledger.disposals() == []
    assert ledger.open_lots()["lot_id"].to_list() == ["L1", "L2"]

    venue.release()
    second = await run_cli(env_for(tmp_path, venue.url))
    _, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, err.decode()
    sell_cid = ledger.intents.order(intent.intent_id, "sell")
    assert sell_cid is not None
    assert venue.requests.count(f"POST order {sell_cid.client_order_id}") == 1
    assert f"GET order {sell_cid.client_order_id}" in venue.requests  # asked, not resent
    assert_one_harvest(venue, ledger)
    assert KEY not in err.decode() and SECRET not in err.decode()


async def test_a_cancelled_task_after_the_order_was_sent_sells_once(
    tmp_path: Path, venue: FakeBinance
) -> None:
    ledger = prepared_ledger(tmp_path)
    env = env_for(tmp_path, venue.url)
    settings = load_settings(None, env=env)
    executor = make_executor(settings, ledger, env=env)
    assert executor is not None
    venue.hold()
    await executor.start()
    task = asyncio.create_task(executor.run())
    await wait_until(lambda: len(venue.orders) == 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await executor.stop()
    assert [i.state for i in ledger.intents.in_states(("sell_submitted",))] == ["sell_submitted"]
    venue.release()

    restarted = make_executor(settings, ledger, env=env)
    assert restarted is not None
    await restarted.start()
    await restarted.recover()
    await restarted.drain()
    await restarted.stop()
    assert_one_harvest(venue, ledger)


async def test_an_order_that_never_arrived_is_sent_again_once(
    tmp_path: Path, venue: FakeBinance
) -> None:
    ledger = prepared_ledger(tmp_path)
    env = env_for(tmp_path, venue.url)
    settings = load_settings(None, env=env)
    executor = make_executor(settings, ledger, env=env)
    assert executor is not None
    venue.fail_next_posts = 1  # 503: ccxt cannot know whether the order exists
    await executor.start()
    await executor.recover()
    await executor.drain()
    await executor.stop()
    [sell] = [o for o in ledger.intents.orders() if o.leg == "sell"]
    assert venue.requests.count(f"POST order {sell.client_order_id}") == 2  # 503, then resent
    assert_one_harvest(venue, ledger)


async def test_dry_run_logs_the_exact_order_and_sends_nothing(
    tmp_path: Path, venue: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = prepared_ledger(tmp_path)
    env = env_for(tmp_path, venue.url, HM_EXECUTION__DRY_RUN="true")
    settings: Settings = load_settings(None, env=env)
    executor = make_executor(settings, ledger, env={})
    assert executor is not None
    await executor.start()
    await executor.recover()
    with caplog.at_level("WARNING"):
        await executor.drain()
    await executor.stop()
    assert venue.orders == []
    [record] = [r for r in caplog.records if r.getMessage() == "dry run: order not sent"]
    assert (record.symbol, record.side, record.amount) == ("BTC/USDT", "sell", "1.5")  # type: ignore[attr-defined]
    [intent] = ledger.intents.in_states(("cancelled",))
    assert intent.reason.startswith("dry run: market sell 1.5 BTC/USDT")
    assert ledger.open_lots().height == 2


async def test_an_unreachable_venue_is_retried_until_it_answers(tmp_path: Path) -> None:
    """At start the venue is down: the executor reports itself unhealthy (and does not
    stop), then trades once the venue comes up."""
    import socket

    from monitor.execute import metrics

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    ledger = prepared_ledger(tmp_path)
    settings = load_settings(None, env=env_for(tmp_path, url))
    executor = make_executor(settings, ledger, env=env_for(tmp_path, url))
    assert executor is not None
    await executor.start()
    assert not executor.health.venue_up
    assert f"cannot reach 127.0.0.1:{port}" in executor.health.reason
    assert metrics.VENUE_UP._value.get() == 0
    task = asyncio.create_task(executor.run())
    venue = FakeBinance(KEY, SECRET, port=port)
    try:
        await asyncio.sleep(0.5)
        assert not task.done()  # retrying, not failed
        await venue.start()
        await wait_until(lambda: len(venue.orders) == 2)
        assert executor.health.venue_up and metrics.VENUE_UP._value.get() == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await executor.stop()
        await venue.stop()
    assert_one_harvest(venue, ledger)
    ledger.close()


async def test_a_sale_far_from_the_venue_price_is_not_sent(
    tmp_path: Path, venue: FakeBinance
) -> None:
    """The venue's ticker says 36,000 while the alert said 40,000: 10% away, not sent."""
    ledger = prepared_ledger(tmp_path)
    venue.prices["BTCUSDT"] = Decimal("36000")
    env = env_for(tmp_path, venue.url)
    executor = make_executor(load_settings(None, env=env), ledger, env=env)
    assert executor is not None
    await executor.start()
    await executor.recover()
    await executor.drain()
    await executor.stop()
    assert "GET ticker BTCUSDT" in venue.requests
    assert venue.orders == [] and not any(r.startswith("POST order") for r in venue.requests)
    [intent] = ledger.intents.in_states(("cancelled",))
    assert intent.reason == (
        "binance price 36000 USD is 10.00% from the alert price 40000 (max_slippage_pct 0.02)"
    )
    assert ledger.open_lots().height == 2


async def test_the_venue_price_is_read_before_the_sale_is_sent(
    tmp_path: Path, venue: FakeBinance
) -> None:
    ledger = prepared_ledger(tmp_path)
    env = env_for(tmp_path, venue.url)
    executor = make_executor(load_settings(None, env=env), ledger, env=env)
    assert executor is not None
    await executor.start()
    await executor.recover()
    await executor.drain()
    await executor.stop()
    ticker = venue.requests.index("GET ticker BTCUSDT")
    sell = next(i for i, r in enumerate(venue.requests) if r.startswith("POST order"))
    assert ticker < sell
    assert_one_harvest(venue, ledger)
