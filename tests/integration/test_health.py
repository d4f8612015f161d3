"""/healthz over real HTTP on the running pipeline (three simulated venues on loopback ->
the real feeds -> the in-process bus -> detection): it fails, with the reason, when the
process cannot do its job, and recovers when it can again (issue 10, item 3).

Before the fix /healthz answered 200 `{"ok": true}` in every case below as long as the
feeds were subscribed, and the lag gauge stood still while detection was stuck.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY

from monitor.alerts.schema import Alert
from monitor.app import Pipeline, make_pipeline
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from streams.simulator.venues import SimulatedVenues

PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
W1,acct-1,w-1,BTC,1,60000,2026-09-01
"""
SYMBOLS = {
    "binance": ["BTC/USDT"],
    "coinbase": ["BTC/USD", "USDT/USD"],
    "kraken": ["BTC/USD", "USDT/USD"],
}
STALL_S = 2.0  # [health] stall_s for these tests
WAIT_S = 20.0  # upper bound for a condition to show up (not a speed assertion)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def wait_health(
    port: int, what: str, want: Callable[[int, dict[str, Any]], bool]
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                code, body = await asyncio.to_thread(healthz, port)
                if want(code, body):
                    return body
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"/healthz never showed {what} within {WAIT_S} s: {body}") from None


def failing(*checks: str) -> Callable[[int, dict[str, Any]], bool]:
    def want(code: int, body: dict[str, Any]) -> bool:
        seen = {p["check"] for p in body.get("problems", [])}
        return code == 503 and not body["ok"] and set(checks) <= seen

    return want


def healthy(code: int, body: dict[str, Any]) -> bool:
    return code == 200 and body["ok"] is True and body["problems"] == []


class HangingSink:
    """A sink that never returns: stands in for anything that stops the detect stage."""

    name = "hanging"

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        self.entered.set()
        await asyncio.Event().wait()


def venues_market() -> SimulatedVenues:
    venues = SimulatedVenues(
        symbols=SYMBOLS, seed=3, tick_interval_ms=20.0, volatility_scale=0.01, noise_bp=1.0
    )
    venues.set_price("BTC", 62_000.0)
    return venues


async def run(
    urls: dict[str, str],
    scenario: Callable[[Pipeline, int], Awaitable[None]],
    *,
    detect: bool = True,
    overrides: dict[str, Any] | None = None,
) -> None:
    port = free_port()
    settings = load_settings(
        overrides={
            "metrics.port": port,
            "health.stall_s": STALL_S,
            "feeds": [{"venue": v, "symbols": s} for v, s in SYMBOLS.items()],
            **(overrides or {}),
        }
    )
    lots = parse_portfolio(io.StringIO(PORTFOLIO), "health.csv")
    pipeline = make_pipeline(
        settings, lots, detect=detect, feed_urls=urls, status_out=None, stdout=io.BytesIO()
    )

    async def until() -> None:
        async with asyncio.timeout(90):
            await scenario(pipeline, port)

    await pipeline.run(until)


def lag() -> float:
    return sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "hm_bus_consumer_lag_records"
        for s in m.samples
        if s.labels.get("group") == "hm-detect"
    )


@pytest.mark.timeout(120)
async def test_a_stuck_detection_fails_healthz_with_its_reason_and_real_lag() -> None:
    sink = HangingSink()
    async with venues_market() as venues:

        async def scenario(p: Pipeline, port: int) -> None:
            p.sinks.append(sink)
            await wait_health(port, "healthy with ticks flowing", healthy)
            venues.set_price("BTC", 49_600.0)  # under the lot's trigger: an alert, the sink hangs
            async with asyncio.timeout(WAIT_S):
                await sink.entered.wait()
            body = await wait_health(
                port, "consumer_stuck and no_ticks", failing("consumer_stuck", "no_ticks")
            )
            reasons = " ".join(p["reason"] for p in body["problems"])
            assert "committed nothing" in reasons and "behind" in reasons
            assert "no tick consumed from the bus" in reasons
            # The lag keeps growing with the ticks the feeds publish: measured, not frozen.
            first = lag()
            await asyncio.sleep(1.5)
            assert lag() > first > 0
            assert REGISTRY.get_sample_value("hm_health_ok") == 0
            assert (
                REGISTRY.get_sample_value("hm_health_check_failing", {"check": "consumer_stuck"})
                == 1
            )

        await run(venues.urls, scenario)


@pytest.mark.timeout(120)
async def test_every_venue_stale_fails_healthz_and_it_recovers() -> None:
    async with venues_market() as venues:

        async def scenario(p: Pipeline, port: int) -> None:
            await wait_health(port, "healthy with ticks flowing", healthy)
            for name in SYMBOLS:
                venues.stall(name, 6.0)
            body = await wait_health(
                port, "venues_stale", failing("venues_stale", "assets_unpriced")
            )
            assert any("every venue is stale" in p["reason"] for p in body["problems"])
            await wait_health(port, "healthy again after the stall", healthy)

        await run(
            venues.urls, scenario, overrides={"prices.venue_stale_s": 1.0, "prices.max_age_s": 1.0}
        )


@pytest.mark.timeout(60)
async def test_ingest_with_no_venue_reachable_fails_healthz() -> None:
    closed = {venue: f"ws://127.0.0.1:{free_port()}/ws" for venue in SYMBOLS}  # nothing listens

    async def scenario(p: Pipeline, port: int) -> None:
        body = await wait_health(port, "no_feed", failing("no_feed"))
        reason = next(p["reason"] for p in body["problems"] if p["check"] == "no_feed")
        assert "no venue subscribed" in reason and "binance" in reason

    await run(closed, scenario, detect=False)
