"""`harvest-monitor ingest` and `harvest-monitor detect` as two processes over Kafka.

The simulated Binance exchange runs in the test on loopback; ingest (feeds -> Kafka) and
detect (Kafka -> detection -> alerts) run as separate CLI subprocesses against the
session's broker, each serving /metrics on its own port. Both are scraped: ingest shows
feed and produce counters and no detection, detect shows consumption, lag per
partition for its group, detection and alerts, and no feed.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.simulator.binance import BinanceSimulator
from tests.ops.live_prometheus import free_port, http_get

REPO = Path(__file__).parents[2]
PORTFOLIO = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
R1,acct-1,w-1,BTC,0.5,80000,2026-09-01
R2,acct-2,w-2,BTC,1,150000,2026-08-15
R3,acct-1,w-1,ETH,1,1000,2026-01-01
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def config(tmp: Path, role: str, broker: str, run: str, sim_url: str, port: int) -> Path:
    path = tmp / f"{role}.toml"
    path.write_text(
        f"""
[portfolio]
path = "{tmp / "portfolio.csv"}"

[ledger]
path = "{tmp / f"{role}.sqlite"}"

[[feeds]]
venue = "binance"
url = "{sim_url}"
symbols = ["BTC/USDT", "ETH/USDT"]

[kafka]
bootstrap_servers = "{broker}"
ticks_topic = "roles.ticks.{run}"
alerts_topic = "roles.alerts.{run}"
group_id = "roles-detect-{run}"
partitions = 2
session_timeout_ms = 1000
heartbeat_interval_ms = 100

[metrics]
port = {port}

[log]
format = "json"
""",
        encoding="utf-8",
    )
    return path


async def scrape(port: int) -> Samples:
    try:
        text = (await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/metrics", 2.0)).decode()
    except OSError:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def has(samples: Samples, name: str, **labels: str) -> bool:
    want = set(labels.items())
    return any(n == name and want <= ls for (n, ls) in samples)


@pytest.mark.kafka
@pytest.mark.timeout(120)
async def test_ingest_and_detect_run_apart_over_kafka(kafka_broker: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    (tmp_path / "portfolio.csv").write_text(PORTFOLIO, encoding="utf-8")
    ports = {"ingest": free_port(), "detect": free_port()}
    group = f"roles-detect-{run}"
    async with BinanceSimulator(
        ["BTC/USDT", "ETH/USDT"], seed=5, tick_interval_ms=20, volatility_scale=0.01
    ) as sim:
        sim.set_price("BTC", 60_000.0)
        procs = {}
        for role, port in ports.items():
            cfg = config(tmp_path, role, kafka_broker, run, sim.url, port)
            out, err = (tmp_path / f"{role}.out").open("wb"), (tmp_path / f"{role}.err").open("wb")
            with out, err:  # the child has its own copies
                procs[role] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "monitor.cli", role, "--config", str(cfg),
                    "--duration", "90",
                    cwd=REPO, stdout=out, stderr=err,
                )  # fmt: skip
        ingest: Samples = {}
        detect: Samples = {}
        try:
            async with asyncio.timeout(60):
                while not (
                    total(ingest, "hm_bus_produced_total", topic=f"roles.ticks.{run}") > 0
                    and total(detect, "hm_alerts_emitted_total") > 0
                    and has(detect, "hm_bus_consumer_lag_records", group=group)
                ):
                    for role, proc in procs.items():
                        err = (tmp_path / f"{role}.err").read_text(errors="replace")[-2000:]
                        assert proc.returncode is None, f"{role} exited: {err}"
                    await asyncio.sleep(0.5)
                    ingest, detect = await scrape(ports["ingest"]), await scrape(ports["detect"])
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.terminate()
            codes = {role: await proc.wait() for role, proc in procs.items()}
    assert codes == {"ingest": 0, "detect": 0}  # SIGTERM is a clean stop
    # ingest: feeds -> Kafka, no detection.
    assert total(ingest, "hm_feed_ticks_total", venue="binance") > 0
    assert total(ingest, "hm_detect_ticks_total") == 0
    assert has(ingest, "hm_build_info") and has(ingest, "hm_start_time_seconds")
    # detect: Kafka -> detection -> alerts, no feed.
    assert total(detect, "hm_bus_consumed_total", topic=f"roles.ticks.{run}") > 0
    assert total(detect, "hm_detect_ticks_total", venue="binance") > 0
    assert total(detect, "hm_feed_ticks_total") == 0
    assert total(detect, "hm_lots_under_water", asset="BTC") == 2
    alerts = (tmp_path / "detect.out").read_text().splitlines()
    assert alerts and all('"schema":"hm.alert/1"' in line for line in alerts)
