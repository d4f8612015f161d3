"""`harvest-monitor status` against a real running demo: the /status JSON beside /metrics,
the readable page, `--json`, and one line with exit 1 when nothing answers.

The harvestable groups are checked against a second implementation: after the demo,
`harvest-monitor lots --price ...` at the prices /status reported marks lots harvestable
with its own (Decimal) comparison; the groups it finds are the ones /status listed.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.schema import decode_alert
from monitor.examples import PORTFOLIO, example_path
from tests.ops.live_prometheus import free_port

REPO = Path(__file__).parents[2]
CLI = (sys.executable, "-m", "monitor.cli")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def demo_config(tmp: Path) -> Path:
    """Paper execution halted by the kill switch, on a ledger of its own holding a copy of
    the example portfolio (the example's own runs on a scratch ledger)."""
    kill = tmp / "KILL"
    kill.write_text("stop\n")
    portfolio = tmp / "portfolio.csv"
    shutil.copy(example_path(PORTFOLIO), portfolio)
    path = tmp / "demo.toml"
    path.write_text(
        f"""
[ledger]
path = "{tmp / "ledger.sqlite"}"

[portfolio]
path = "{portfolio}"

[execution]
mode = "paper"
kill_switch_file = "{kill}"
""",
        encoding="utf-8",
    )
    return path


def poll_status(url: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """/status once the demo has alerted and every venue is subscribed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: dict[str, Any] = json.loads(response.read())
        except OSError:
            continue
        venues = body.get("venues", {})
        subscribed = all(v.get("state") == "subscribed" for v in venues.values())
        if body.get("last_alerts") and len(venues) == 3 and subscribed:
            return body
    raise AssertionError("the demo's /status never showed alerts")


@pytest.mark.timeout(180)
def test_status_of_a_running_demo(tmp_path: Path) -> None:
    port = free_port()
    config = demo_config(tmp_path)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    url = f"http://127.0.0.1:{port}/status"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                *CLI,
                "demo",
                "--duration",
                "25",
                "--metrics-port",
                str(port),
                "--config",
                str(config),
            ],
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            body = poll_status(url, proc)
            text = cli("status", "--url", url)
            as_json = cli("status", "--url", url, "--json")
            assert proc.wait(timeout=90) == 0, err.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()

    # What the demo is: its role, its three venues, the example portfolio's lots and groups.
    with example_path(PORTFOLIO).open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert body["schema"] == "hm.status/1" and body["role"] == "demo"
    assert body["uptime_s"] > 0
    assert sorted(body["venues"]) == ["binance", "coinbase", "kraken"]
    assert all(v["age_s"] < 5 for v in body["venues"].values())
    assert body["lots"] == len(rows)
    assert body["groups"] == len({(r["account"], r["wallet"], r["asset"]) for r in rows})
    assert body["consumer_lag"] is not None and body["consumer_lag"] >= 0

    # The last alerts are hm.alert/1 messages the demo printed.
    printed = {decode_alert(line).alert_id for line in out.read_bytes().splitlines() if line}
    last = [decode_alert(json.dumps(a)) for a in body["last_alerts"]]
    assert last and {a.alert_id for a in last} <= printed

    # Nearest triggers: distance recomputed from the price and trigger given, nearest first.
    nearest = body["nearest_triggers"]
    assert nearest
    for n in nearest:
        assert n["trigger"] < n["price"]
        expected = (n["price"] - n["trigger"]) / n["price"] * 100
        assert n["distance_pct"] == pytest.approx(expected, abs=1e-4)
    assert [n["distance_pct"] for n in nearest] == sorted(n["distance_pct"] for n in nearest)

    # Execution: paper, halted by the kill switch, said in the problems and on stderr.
    execution = body["execution"]
    assert execution["mode"] == "paper" and "kill switch" in execution["kill_switch"]
    assert execution["sold_today_usd"] == "0.00"  # every order stopped by the kill switch
    assert any("no orders are sent" in p for p in body["problems"])
    assert "attention: kill switch:" in err.read_text()

    # The readable page and --json.
    assert text.returncode == 0, text.stderr
    page = text.stdout
    for label in ("venues", "lag", "lots", "harvest", "nearest", "alerts", "held", "execution"):
        assert f"\n{label:<10} " in page, label
    assert "demo, pid" in page and "kill switch: " in page and "paper" in page
    assert f"{body['lots']:,} lots in {body['groups']:,} groups" in page
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["schema"] == "hm.status/1"

    # Harvestable groups, by a second implementation: `lots` at the same prices.
    prices = [f"--price={asset}={usd!r}" for asset, usd in body["prices"].items()]
    listed = cli("lots", "--config", str(config), "--format", "csv", *prices)
    assert listed.returncode == 0, listed.stderr
    yes = {
        (r["account"], r["wallet"], r["asset"])
        for r in csv.DictReader(io.StringIO(listed.stdout))
        if r["harvestable"] == "yes"
    }
    groups = body["harvestable"]["groups"]
    assert body["harvestable"]["count"] == len(yes)
    assert {(g["account"], g["wallet"], g["asset"]) for g in groups} <= yes


def test_status_says_so_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}/status"
    result = cli("status", "--url", url)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no harvest-monitor status at {url}")
    assert "Traceback" not in result.stderr
