"""Three simulated venues on loopback (Binance, Coinbase, Kraken protocols, one shared
market) -> the real feeds -> in-process bus -> consensus prices -> detection.

Fault cases of issue 4 on the monitor side: a flash wick on one venue alerts nothing; a
stalled venue is left out (and reported) and comes back; a USDT de-peg moves the
USDT-quoted prices and raises the alarm while the USD price stays right.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from monitor.app import Pipeline, make_pipeline
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.simulator.venues import SimulatedVenues

# One short-term BTC lot at a 60,000 basis: its trigger is 57,000 (5% under).
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
W1,acct-1,w-1,BTC,1,60000,2026-09-01
"""
SYMBOLS = {
    "binance": ["BTC/USDT"],
    "coinbase": ["BTC/USD", "USDT/USD"],
    "kraken": ["BTC/USD", "USDT/USD"],
}
WAIT_S = 15.0  # upper bound for a condition to show up (not a speed assertion)


def three_venues() -> SimulatedVenues:
    """A calm shared market (BTC at 62,000) printed by three venues, 50 steps/s each."""
    venues = SimulatedVenues(
        symbols=SYMBOLS, seed=3, tick_interval_ms=20.0, volatility_scale=0.01, noise_bp=1.0
    )
    venues.set_price("BTC", 62_000.0)
    return venues


async def run(
    venues: SimulatedVenues,
    scenario: Callable[[Pipeline], Awaitable[None]],
    **prices: Any,
) -> tuple[Pipeline, list[dict[str, Any]]]:
    """The pipeline `run` uses, over the three venues, until `scenario` returns."""
    settings = load_settings(
        overrides={
            "metrics.port": 0,
            "feeds": [{"venue": v, "symbols": s} for v, s in SYMBOLS.items()],
            **{f"prices.{k}": v for k, v in prices.items()},
        }
    )
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "venues.csv")
    out = io.BytesIO()
    pipeline = make_pipeline(settings, lots, feed_urls=venues.urls, status_out=None, stdout=out)

    async def until() -> None:
        async with asyncio.timeout(60):
            await scenario(pipeline)

    await pipeline.run(until)
    return pipeline, [json.loads(line) for line in out.getvalue().splitlines()]


async def wait_for(what: str, condition: Callable[[], bool]) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not condition():  # noqa: ASYNC110 - the state belongs to other tasks
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not seen within {WAIT_S} s: {what}") from None


def consensus_venues(pipeline: Pipeline, asset: str = "BTC") -> int:
    assert pipeline.detector is not None
    price = pipeline.detector.prices.latest.get(asset)
    return price.venues if price is not None else 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.timeout(90)
async def test_flash_wick_on_one_of_three_venues_alerts_nothing() -> None:
    async with three_venues() as venues:

        async def scenario(p: Pipeline) -> None:
            assert p.detector is not None
            board = p.detector.prices
            await wait_for("three venues agreeing on BTC", lambda: consensus_venues(p) == 3)
            wicks = board.rejected.get(("kraken", "outlier"), 0)
            venues.flash_wick("kraken", "BTC", 0.8, prints=10)  # 49,600: under the trigger
            await wait_for(
                "kraken's ten wick prints rejected",
                lambda: board.rejected.get(("kraken", "outlier"), 0) >= wicks + 10,
            )
            await wait_for("three venues agreeing again", lambda: consensus_venues(p) == 3)
            assert p.counters.alerts == 0
            # The same depth on the whole market is a real move and alerts.
            venues.set_price("BTC", 49_600.0)
            await wait_for("the alert for a market-wide fall", lambda: p.counters.alerts > 0)

        _, alerts = await run(venues, scenario)
    assert [(a["lot_ids"], a["asset"]) for a in alerts] == [(["W1"], "BTC")]
    assert alerts[0]["venues"] >= 2
    assert abs(float(alerts[0]["price"]) - 49_600.0) < 500.0


@pytest.mark.timeout(90)
async def test_stalled_venue_is_left_out_reported_and_comes_back() -> None:
    async with three_venues() as venues:

        async def scenario(p: Pipeline) -> None:
            assert p.watch is not None
            await wait_for("three venues on BTC", lambda: consensus_venues(p) == 3)
            venues.stall("kraken", 4.0)
            await wait_for("kraken left out as stale", lambda: consensus_venues(p) == 2)
            await wait_for(
                "kraken reported stale", lambda: p.watch is not None and p.watch.stale == ["kraken"]
            )
            health = p.health()
            assert health["degraded"] is True
            assert health["prices"]["venues"]["kraken"]["stale"] is True
            assert sample("hm_venue_stale", venue="kraken") == 1.0
            await wait_for("kraken back after the stall", lambda: consensus_venues(p) == 3)
            await wait_for(
                "kraken no longer stale", lambda: p.watch is not None and p.watch.stale == []
            )
            # Every venue silent: BTC (and the USDT rate) have no fresh venue, listed as left out.
            for name in SYMBOLS:
                venues.stall(name, 4.0)
            await wait_for(
                "BTC and USDT without a fresh venue",
                lambda: p.watch is not None and p.watch.excluded == ["BTC", "USDT"],
            )
            await wait_for(
                "BTC priced again", lambda: p.watch is not None and p.watch.excluded == []
            )

        pipeline, alerts = await run(venues, scenario, max_age_s=1.0, venue_stale_s=1.5)
    assert alerts == []
    assert pipeline.detector is not None
    assert pipeline.detector.prices.rejected.get(("kraken", "outlier"), 0) == 0


@pytest.mark.timeout(90)
async def test_usdt_depeg_moves_usdt_prices_and_raises_the_alarm() -> None:
    async with three_venues() as venues:
        alarms = sample("hm_quote_depeg_alarms_total", quote="USDT")

        async def scenario(p: Pipeline) -> None:
            assert p.detector is not None
            board = p.detector.prices
            await wait_for("three venues on BTC", lambda: consensus_venues(p) == 3)
            assert sample("hm_quote_depeg", quote="USDT") == 0.0
            venues.drift_peg("USDT", 0.97)  # every venue: USDT is worth 0.97 USD
            await wait_for(
                "the de-peg alarm", lambda: sample("hm_quote_depeg", quote="USDT") == 1.0
            )
            await wait_for(
                "binance's BTC/USDT converted at the live rate",
                lambda: (
                    abs(board.venues_of("BTC")["binance"].usd / 62_000.0 - 1) < 0.005
                    and "BTC/USDT" in venues["binance"].last_prices()
                    and venues["binance"].last_prices()["BTC/USDT"] > 63_000.0
                ),
            )
            await wait_for("three venues still agreeing", lambda: consensus_venues(p) == 3)
            assert p.health()["prices"]["quotes"]["USDT"]["depeg"] is True

        pipeline, alerts = await run(venues, scenario)
    assert alerts == []
    assert sample("hm_quote_depeg_alarms_total", quote="USDT") == alarms + 1
    assert pipeline.detector is not None
    rate = pipeline.detector.prices.rates.stable["USDT"].live
    assert rate is not None and abs(rate - 0.97) < 0.001
    price = pipeline.detector.prices.latest["BTC"].usd
    assert abs(price / 62_000.0 - 1) < 0.005  # the USD price did not move with USDT


@pytest.mark.timeout(90)
async def test_bad_prints_of_the_last_fresh_venue_alert_nothing() -> None:
    """Issue 10: three venues agree; two go quiet past max_age_s; the one left prints
    0.00009 (an absurd jump: rejected) and 31,000 (half the market: held), one print
    each. Before the guard either print alerted at its price."""
    async with three_venues() as venues:
        absurd = sample("hm_price_rejected_total", venue="kraken", reason="absurd_jump")
        held = sample("hm_price_held_total", reason="jump") + sample(
            "hm_price_held_total", reason="single_venue"
        )

        async def scenario(p: Pipeline) -> None:
            assert p.detector is not None
            await wait_for("three venues agreeing on BTC", lambda: consensus_venues(p) == 3)
            venues.stall("binance", 20.0)
            venues.stall("coinbase", 20.0)
            await wait_for("kraken alone on BTC", lambda: consensus_venues(p) == 1)
            await asyncio.sleep(2.5)  # past hold_s: kraken's own price has persisted
            venues.flash_wick("kraken", "BTC", 1.5e-9, prints=1)  # 0.000093
            await asyncio.sleep(1.0)
            venues.flash_wick("kraken", "BTC", 0.5, prints=1)  # 31,000
            await asyncio.sleep(2.0)

        pipeline, alerts = await run(venues, scenario, max_age_s=1.0, hold_s=2.0)
    assert alerts == []
    assert sample("hm_price_rejected_total", venue="kraken", reason="absurd_jump") > absurd
    assert (
        sample("hm_price_held_total", reason="jump")
        + sample("hm_price_held_total", reason="single_venue")
        > held
    )
    assert pipeline.detector is not None
    assert pipeline.detector.prices.latest["BTC"].venues == 1
