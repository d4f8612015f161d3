"""Every dashboard panel query and every rule, run by a real Prometheus scraping the demo.

`harvest-monitor demo` runs as a subprocess with its metrics on a free loopback port,
delivering its alerts to a (flaky) webhook receiver on loopback through the ledger and
executing them on the paper venue; a
real `prometheus` scrapes it every second and evaluates docker/prometheus/rules/. After
two successful scrapes, each panel's query and each recording rule is executed through
the HTTP API: one that errors, or returns nothing (or only NaN) once the demo has had time
to produce it, fails the test. Skips when `prometheus` is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ops.expressions import REPO, dashboard_queries, rules
from tests.ops.live_prometheus import LivePrometheus, free_port
from tests.ops.webhook_receiver import WebhookReceiver

JOB = "harvest-demo"
DEMO = (sys.executable, "-m", "monitor.cli", "demo", "--duration", "120")
SECRET_ENV = "HM_OPS_TEST_HOOK_SECRET"


def demo_config(tmp: Path, hook_url: str) -> Path:
    """The demo's defaults plus a signed webhook subscription and paper execution (both on
    the ledger), so the delivery and harvest panels have real data; the Australian pack
    (short and long terms, a 30-day wait before a rebuy) so the investor's do-not-buy
    list has entries."""
    path = tmp / "demo.toml"
    path.write_text(
        f"""
[ledger]
path = "{tmp / "ledger.sqlite"}"

[tax]
jurisdiction = "au"

[[webhooks]]
name = "ops-test"
url = "{hook_url}"
secret_env = "{SECRET_ENV}"
backoff_initial_s = 0.1
backoff_max_s = 0.5

[execution]
mode = "paper"
""",
        encoding="utf-8",
    )
    return path


def wait_for_scrapes(
    prom: LivePrometheus, demo: subprocess.Popen[bytes], want: int, demo_err: Path
) -> None:
    deadline = time.monotonic() + 60
    while prom.successful_scrapes(JOB) < want:
        assert demo.poll() is None, f"the demo exited with {demo.returncode}: {tail(demo_err)}"
        assert time.monotonic() < deadline, f"fewer than {want} scrapes of the demo in 60 s"
        time.sleep(0.5)


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def run_until_answered(prom: LivePrometheus, queries: dict[str, str]) -> dict[str, str]:
    """Run each query until it returns data (rates need two samples, rules an evaluation);
    returns what still fails after the deadline: `where -> why`."""
    pending = dict(queries)
    failed: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for where, expr in list(pending.items()):
            try:
                result = prom.query(expr)
            except ValueError as exc:  # a query error does not go away by waiting
                failed[where] = f"{expr!r} errors: {exc}"
                del pending[where]
                continue
            if result:
                del pending[where]
        if pending:
            time.sleep(1)
    failed.update({where: f"{expr!r} returned nothing" for where, expr in pending.items()})
    return failed


@pytest.mark.timeout(150)
def test_every_panel_query_and_rule_works_on_the_live_demo(
    prometheus_binary: Path, tmp_path: Path
) -> None:
    port = free_port()
    queries = {q.where: q.expr for q in dashboard_queries()}
    queries |= {f"recording rule {r.name}": r.name for r in rules() if r.kind == "record"}
    # Not just zeros: the demo really harvested (paper), delivered and measured latency
    # (the counters themselves: the demo's first alerts can precede the first scrape).
    queries |= {
        "paper harvests executed": "sum(hm_execution_harvested_loss_usd_total) > 0",
        "webhook deliveries": 'sum(hm_webhook_deliveries_total{result="delivered"}) > 0',
        "tick-to-alert latency observed": "sum(hm_tick_to_alert_seconds_count) > 0",
        "lots under water": "sum(asset:hm_lots_under_water:sum) > 0",
        "losses harvested this year": "sum(hm_harvested_loss_ytd_usd) > 0",
        "tax saved this year": "max(hm_estimated_tax_saved_ytd_usd) > 0",
        "assets on the do-not-buy list": "max(hm_do_not_buy_assets) > 0",
    }
    with (
        WebhookReceiver() as receiver,
        (tmp_path / "demo.out").open("wb") as out,
        (tmp_path / "demo.err").open("wb") as err,
    ):
        config = demo_config(tmp_path, receiver.url)
        demo = subprocess.Popen(
            [*DEMO, "--config", str(config), "--metrics-port", str(port)],
            cwd=REPO,
            stdout=out,
            stderr=err,
            env={**os.environ, SECRET_ENV: "ops-test-secret"},
        )
        try:
            with LivePrometheus(prometheus_binary, tmp_path, {JOB: f"127.0.0.1:{port}"}) as prom:
                prom.wait_ready()
                wait_for_scrapes(prom, demo, 2, tmp_path / "demo.err")
                failed = run_until_answered(prom, queries)
                rule_health = [
                    f"{rule['name']}: {rule['health']} {rule.get('lastError', '')}"
                    for group in prom.api("rules")["groups"]
                    for rule in group["rules"]
                    if rule["health"] != "ok"
                ]
        finally:
            demo.terminate()
            demo.wait(timeout=30)
    report = "\n".join(f"{where}: {why}" for where, why in failed.items())
    assert not failed, f"{report}\ndemo stderr:\n{tail(tmp_path / 'demo.err')}"
    assert not rule_health, rule_health
    assert receiver.requests > receiver.failed > 0  # deliveries and retries happened for real
    assert len(queries) >= 30  # every panel of every row was found
