"""`harvest-monitor bench` at a tiny size: it runs end to end, prints its table, and its
JSON holds every figure as a positive finite number. Targets are never asserted here:
the bench reports them, it does not enforce them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Every figure the issue asks for, as a path into the JSON document.
FIGURES = [
    "ceilings.produce.ticks_per_s",
    "ceilings.consume_decode.ticks_per_s",
    "ceilings.websocket.ticks_per_s",
    "ingest.ticks_per_s",
    "ingest.ratio_to_produce_ceiling",
    "ingest.ratio_to_websocket_ceiling",
    "detect.ticks_per_s",
    "detect.ratio_to_consume_ceiling",
    "latency.achieved_ticks_per_s",
    "latency.tick_to_alert_ms.p50",
    "latency.tick_to_alert_ms.p99",
    "latency.tick_to_alert_ms.max",
    "latency.tick_to_decision_ms.p50",
    "latency.tick_to_decision_ms.p99",
    "latency.tick_to_decision_ms.max",
    "latency_in_process.achieved_ticks_per_s",
    "latency_in_process.tick_to_alert_ms.p99",
    "latency_in_process.tick_to_alert_ms.max",
    "latency_in_process.tick_to_decision_ms.max",
    "scaling.ratio",
    "memory.rss_bytes_per_lot",
    "memory.rebuild_s",
]


def figure(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{path}: no {key!r} in the JSON"
        node = node[key]
    return node


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_bench_runs_and_reports_every_figure(tmp_path: Path, tansu_binary: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "bench",
            "--lots",
            "3000",
            "--assets",
            "6",
            "--ticks",
            "3000",
            "--rate",
            "1500",
            "--sizes",
            "1000,3000",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "HM_TANSU_BIN": str(tansu_binary)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "hm.bench/1"
    assert "tansu" in doc["broker"]  # it says which broker it measured
    assert doc["skipped"] == {}
    for path in FIGURES:
        value = figure(doc, path)
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (path, value)
    sizes = doc["scaling"]["sizes"]
    assert [s["lots"] for s in sizes] == [1000, 3000]
    for size in sizes:
        assert size["cost_us_per_tick"] > 0 and size["rebuild_s"] > 0
    for key, bus in (("latency", "kafka"), ("latency_in_process", "in-process")):
        lat = doc[key]
        assert lat["bus"] == bus
        # every alerting tick of the window lands in exactly one histogram bucket
        buckets = lat["tick_to_alert_histogram"]
        assert sum(b["count"] for b in buckets) == lat["tick_to_alert_ms"]["count"]
        assert [p["generation"] for p in lat["collector_pauses"]] == [0, 1, 2]
    machine = doc["machine"]
    assert machine["hostname"] and machine["cpu_model"] and machine["cpus"] >= 1
    assert len(machine["load_average_at_start"]) == len(machine["load_average_at_end"]) == 3
    assert len(doc["targets"]) == 6 and all("met" in t for t in doc["targets"])
    for section in ("ceilings", "ingest", "detect", "latency", "scaling", "memory"):
        assert section in done.stdout  # the table
    assert "[bench" in done.stderr  # progress while running
