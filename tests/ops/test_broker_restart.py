"""`ingest` and `detect` over a broker killed (-9) and restarted empty on the same port
(issue 10, item 4): while it is away (longer than `[health] stall_s`) both /healthz say
why they cannot work; after it, detection resumes within a bound, neither process
crashes, the logs stay short, and both /healthz are 200 again.

Before the fix detection stalled for good (the commit retried UnknownTopicOrPartition
forever, ~50 log lines a second) and ingest crashed with `Unrecognized partition`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import uuid
from pathlib import Path

import pytest

from streams.bus.broker import LocalBroker
from streams.simulator.binance import BinanceSimulator
from tests.ops.live_prometheus import free_port, http_get
from tests.ops.test_roles import PORTFOLIO, REPO, Samples, config, scrape, total

RESUME_BOUND_S = 45.0  # detection must take ticks again within this after the restart
OUTAGE_S = 30.0  # the broker stays away until both /healthz fail ([health] stall_s = 5)


def detected(samples: Samples) -> float:
    return total(samples, "hm_detect_ticks_total")


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        return 200, json.loads(http_get(f"http://127.0.0.1:{port}/healthz", 2.0))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


@pytest.mark.kafka
@pytest.mark.timeout(240)
async def test_detection_resumes_after_the_broker_restarts_empty(
    tansu_binary: Path, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    (tmp_path / "portfolio.csv").write_text(PORTFOLIO, encoding="utf-8")
    ports = {"ingest": free_port(), "detect": free_port()}
    broker = LocalBroker(tansu_binary)
    await asyncio.to_thread(broker.start)
    try:
        async with BinanceSimulator(
            ["BTC/USDT", "ETH/USDT"], seed=5, tick_interval_ms=20, volatility_scale=0.01
        ) as sim:
            procs = {}
            for role, port in ports.items():
                cfg = config(tmp_path, role, broker.bootstrap, run, sim.url, port)
                cfg.write_text(cfg.read_text() + "\n[health]\nstall_s = 5.0\n", encoding="utf-8")
                out, err = (
                    (tmp_path / f"{role}.out").open("wb"),
                    (tmp_path / f"{role}.err").open("wb"),
                )
                with out, err:
                    procs[role] = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "monitor.cli", role, "--config", str(cfg),
                        "--duration", "200",
                        cwd=REPO, stdout=out, stderr=err,
                    )  # fmt: skip

            def alive() -> None:
                for role, proc in procs.items():
                    err = (tmp_path / f"{role}.err").read_text(errors="replace")[-3000:]
                    assert proc.returncode is None, f"{role} exited: {err}"

            detect: Samples = {}
            try:
                async with asyncio.timeout(60):
                    while detected(detect) == 0 or health(ports["detect"])[0] != 200:
                        alive()
                        await asyncio.sleep(0.5)
                        detect = await scrape(ports["detect"])
                lines_before = {
                    r: len((tmp_path / f"{r}.err").read_text().splitlines()) for r in procs
                }
                await asyncio.to_thread(broker.kill)
                down: dict[str, set[str]] = {"ingest": set(), "detect": set()}
                async with asyncio.timeout(OUTAGE_S):  # the broker stays away this long
                    while not (down["detect"] and down["ingest"]):
                        for role, port in ports.items():
                            code, body = health(port)
                            if code == 503:
                                down[role] |= {p["check"] for p in body["problems"]}  # type: ignore[attr-defined]
                        await asyncio.sleep(0.5)
                alive()
                await asyncio.to_thread(broker.start)  # empty, on the same port
                restarted = time.monotonic()
                at_restart = detected(await scrape(ports["detect"]))
                async with asyncio.timeout(RESUME_BOUND_S):
                    while detected(detect) <= at_restart + 200:  # ~2 s of the simulator's ticks
                        alive()
                        await asyncio.sleep(0.5)
                        detect = await scrape(ports["detect"])
                resumed_s = time.monotonic() - restarted
                async with asyncio.timeout(30):
                    while health(ports["detect"])[0] != 200 or health(ports["ingest"])[0] != 200:
                        alive()
                        await asyncio.sleep(0.5)
                resumed_at = after = detected(await scrape(ports["detect"]))
                # It keeps going: another ~2 s of the simulator's ticks (polled, since a
                # loaded machine runs the simulator slower than its nominal rate).
                async with asyncio.timeout(30):
                    while after <= resumed_at + 200:
                        alive()
                        await asyncio.sleep(0.5)
                        after = detected(await scrape(ports["detect"]))
                ingest = await scrape(ports["ingest"])
            finally:
                for proc in procs.values():
                    if proc.returncode is None:
                        proc.terminate()
                codes = {role: await proc.wait() for role, proc in procs.items()}
    finally:
        await asyncio.to_thread(broker.stop)
    assert codes == {"ingest": 0, "detect": 0}
    assert down["detect"] & {"no_ticks", "bus_unreachable"}, down
    assert "produce_failing" in down["ingest"], down
    assert resumed_s < RESUME_BOUND_S and after > resumed_at + 200
    assert total(ingest, "hm_bus_produced_total") > 0
    for role in procs:  # one line per cause per 10 s: a few dozen lines, not thousands
        lines = (tmp_path / f"{role}.err").read_text().splitlines()[lines_before[role] :]
        assert len(lines) < 150, f"{role} logged {len(lines)} lines:\n" + "\n".join(lines[-40:])
    print(f"detection resumed {resumed_s:.1f} s after the restart; /healthz while away: {down}")
