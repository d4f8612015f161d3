"""The investor's figures (monitor.investor) come from the ledger and survive a restart.

A demo harvests on the paper venue under the Australian pack (short and long terms, a
30-day wait before buying back). A second demo on the same ledger, alerting only, must
report from its first refresh what `harvest-monitor tax summary` and `tax do-not-buy`
compute from that ledger: the losses harvested this tax year by term, the estimated tax
saved and the assets on the do-not-buy list with their first day to buy again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.examples import PORTFOLIO, example_path
from tests.ops.live_prometheus import free_port

REPO = Path(__file__).parents[2]
CLI = (sys.executable, "-m", "monitor.cli")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("hm_harvested", "hm_estimated_tax", "hm_do_not_buy"))
    }


@pytest.mark.timeout(240)
def test_figures_match_the_tax_summary_and_survive_a_restart(tmp_path: Path) -> None:
    portfolio = tmp_path / "portfolio.csv"  # a copy: the example's own gets a scratch ledger
    shutil.copy(example_path(PORTFOLIO), portfolio)
    config = tmp_path / "au.toml"
    config.write_text(
        f'[ledger]\npath = "{tmp_path / "ledger.sqlite"}"\n'
        f'[portfolio]\npath = "{portfolio}"\n'
        '[tax]\njurisdiction = "au"\n[execution]\nmode = "paper"\n',
        encoding="utf-8",
    )
    first = run("demo", "--duration", "15", "--metrics-port", "0", "--config", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    summary = run("tax", "summary", "--json", "--config", str(config))
    assert summary.returncode == 0, summary.stderr
    year = json.loads(summary.stdout)
    assert year["harvests"] > 0, "the first demo harvested nothing"
    listed = run("tax", "do-not-buy", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    until: dict[str, date] = {}
    for line in listed.stdout.splitlines():
        _, asset, when, *_ = line.split("\t")
        day = date.fromisoformat(when.removeprefix("until "))
        until[asset] = max(day, until.get(asset, day))
    assert until, listed.stdout

    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "demo", "--duration", "30", "--metrics-port", str(port), "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HM_EXECUTION__MODE": "alert"},  # no new trade: the ledger as is
    )
    try:
        got: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        # The unlabelled gauges are served (at 0) from the start; the year's refresh has run
        # once the labelled ones are there: the harvested terms, and the do-not-buy list it
        # sets last.
        wanted = [("hm_harvested_loss_ytd_usd", (("term", "short"),))] + [
            ("hm_do_not_buy_until_timestamp_seconds", (("asset", asset),)) for asset in until
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(key in got for key in wanted):
            time.sleep(0.5)
            try:
                got = samples(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                continue
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    short = got[("hm_harvested_loss_ytd_usd", (("term", "short"),))]
    long = got[("hm_harvested_loss_ytd_usd", (("term", "long"),))]
    # Every disposal of the demo is a harvest at a loss, none disallowed (no window in au):
    # the summary's gross losses by term are the harvested losses by term.
    assert year["disallowed_losses_usd"] == "0.00"
    assert short == pytest.approx(float(year["short_term_losses_usd"]), abs=0.01)
    assert long == pytest.approx(float(year["long_term_losses_usd"]), abs=0.01)
    assert short + long == pytest.approx(float(year["harvested_losses_usd"]), abs=0.01)
    assert got[("hm_estimated_tax_saved_ytd_usd", ())] == pytest.approx(
        float(year["estimated_tax_saved_usd"]), abs=0.01
    )
    assert got[("hm_do_not_buy_assets", ())] == len(until)
    for asset, day in until.items():
        stamp = got[("hm_do_not_buy_until_timestamp_seconds", (("asset", asset),))]
        assert datetime.fromtimestamp(stamp, UTC).date() == day
