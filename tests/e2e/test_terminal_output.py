"""`harvest-monitor demo` in a real pseudo-terminal: readable alert lines in colour and
text logs; NO_COLOR honoured; `--json` gives the `hm.alert/1` JSON lines even there.
(The piped run, JSON unchanged, is tests/e2e/test_demo.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.alerts.schema import decode_alert
from tests.pseudo_terminal import run_in_terminal

REPO = Path(__file__).parents[2]
DEMO = (sys.executable, "-m", "monitor.cli", "demo", "--duration", "8", "--metrics-port", "0")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# time, kind, account/wallet, asset, quantity @ price, loss, net, venues, rebuy in a word
ALERT_LINE = re.compile(
    r"^\d\d:\d\d:\d\d (HARVEST|DEADLINE|WASH-WARN) +\S+/\S+  [A-Z0-9]+  [\d,.]+ @ [\d,.]+  "
    r"loss \$[\d,.]+  net \$[\d,.]+  (\d+ venues|\S+ only)  (rebuy \S+|no rebuy)"
)


@pytest.mark.timeout(120)
def test_demo_on_a_terminal_prints_readable_lines_in_colour() -> None:
    code, out = run_in_terminal(DEMO, cwd=REPO)
    assert code == 0, out[-3000:]
    assert "\x1b[" in out, "no colour on a terminal"
    lines = [ANSI.sub("", line) for line in out.splitlines()]
    alerts = [line for line in lines if ALERT_LINE.match(line)]
    assert alerts, f"no readable alert line:\n{out[-3000:]}"
    assert not any(line.startswith("{") for line in lines), "JSON on a terminal"
    assert any(" info    monitor.demo: demo started" in line for line in lines)
    status = [line for line in lines if line.startswith("[status] ")]
    assert status and all(line.endswith(" | ok") or " | attention: " in line for line in status)


@pytest.mark.timeout(120)
def test_no_color_turns_colour_off_on_a_terminal() -> None:
    code, out = run_in_terminal(DEMO, cwd=REPO, env={"NO_COLOR": "1"})
    assert code == 0, out[-3000:]
    assert "\x1b[" not in out
    assert any(ALERT_LINE.match(line) for line in out.splitlines())


@pytest.mark.timeout(120)
def test_json_flag_gives_json_lines_on_a_terminal() -> None:
    code, out = run_in_terminal((*DEMO, "--json"), cwd=REPO)
    assert code == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.strip()]
    alerts = [decode_alert(line) for line in lines if line.startswith('{"schema":"hm.alert/1"')]
    assert alerts
    logs = [json.loads(line) for line in lines if line.startswith('{"ts":')]
    assert any(entry["msg"] == "demo started" for entry in logs)
    others = [line for line in lines if not line.startswith(("{", "[status] "))]
    assert others == [], others[:5]


@pytest.mark.timeout(120)
def test_replay_on_a_terminal_shows_each_alert_of_the_piped_json_readably() -> None:
    cli = (sys.executable, "-m", "monitor.cli", "replay", "--example")
    piped = subprocess.run(cli, cwd=REPO, capture_output=True, timeout=60, check=True)
    alerts = [decode_alert(line) for line in piped.stdout.splitlines() if line]
    code, out = run_in_terminal(cli, cwd=REPO)
    assert code == 0, out[-3000:]
    lines = [ANSI.sub("", line) for line in out.splitlines()]
    readable = [line for line in lines if ALERT_LINE.match(line)]
    assert alerts and len(readable) == len(alerts)
    for line, alert in zip(readable, alerts, strict=True):
        assert line.startswith(alert.tick_ts[11:19])
        assert f" {alert.account}/{alert.wallet}  {alert.asset}  " in line
        assert f"loss ${Decimal(alert.loss_usd):,.2f}" in line
        assert f"net ${Decimal(alert.net_benefit_usd):,.2f}" in line
