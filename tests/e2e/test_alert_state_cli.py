"""Alert state survives restarts, through the commands a user runs.

- `harvest-monitor replay` of a tick file in two parts on one ledger (the process exits in
  between) gives exactly the alerts of one replay of the whole file.
- `harvest-monitor demo` on a ledger, stopped by SIGTERM or killed by SIGKILL once it has
  alerted, then started again on the same ledger and the same simulated market: no lot
  it alerted for before is alerted for again (the cooldown is an hour; the market starts
  where it started before, so every lot under water at the start crosses again).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.alerts.schema import Alert, decode_alert
from monitor.examples import PORTFOLIO, example_path
from monitor.ledger import Ledger
from tests.e2e.test_replay_cli import write_drawdown

REPO = Path(__file__).parents[2]
EXAMPLE = example_path(PORTFOLIO)


def hm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def replay(ticks: Path, ledger: Path, out: Path) -> list[str]:
    # The bad-print guard's window is in memory: after a restart one venue's price is held
    # again until it persists ([prices] hold_s). Acting on these one-venue ticks at once
    # compares the alert state alone.
    config = ledger.with_suffix(".toml")
    config.write_text("[prices]\nhold_s = 0\n", encoding="utf-8")
    done = hm(
        "replay", "--portfolio", str(EXAMPLE), "--ticks", str(ticks), "--config", str(config),
        "--ledger", str(ledger), "--alerts-out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(encoding="utf-8").splitlines()


def test_replay_in_two_parts_on_one_ledger_gives_the_whole_files_alerts(tmp_path: Path) -> None:
    from streams.simulator.universe import UNIVERSE

    ticks = tmp_path / "ticks.jsonl"
    write_drawdown(ticks, {a.base: a.start_usd for a in UNIVERSE})
    lines = ticks.read_text(encoding="utf-8").splitlines(keepends=True)
    # Cut a third of the way into the fall: lots alerted in the first part are still
    # under water in the second, inside their hour of cooldown.
    cut = len(lines) // 6
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:cut]), encoding="utf-8")
    second.write_text("".join(lines[cut:]), encoding="utf-8")

    whole = replay(ticks, tmp_path / "whole.sqlite", tmp_path / "whole.jsonl")
    parts = replay(first, tmp_path / "parts.sqlite", tmp_path / "a.jsonl")
    assert parts, "the first part alerts (else the cut tests nothing)"
    parts += replay(second, tmp_path / "parts.sqlite", tmp_path / "b.jsonl")
    assert len(parts) > len(replay(first, tmp_path / "first.sqlite", tmp_path / "c.jsonl"))
    assert parts == whole


def stored_alerts(ledger_path: Path) -> list[Alert]:
    ledger = Ledger(ledger_path).open()
    try:
        return [decode_alert(a.body) for a in ledger.alerts.alerts_after_seq(0, 100_000)]
    finally:
        ledger.close()


def alerted_lots(alerts: list[Alert]) -> set[str]:
    return {lot for a in alerts if a.kind == "harvest" for lot in a.lot_ids}


def demo(config: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "demo", "--config", str(config),
         "--portfolio", str(EXAMPLE), "--metrics-port", "0", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=out.open("wb"),
    )  # fmt: skip


@pytest.mark.timeout(240)
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_demo_restarted_on_its_ledger_repeats_no_lot(tmp_path: Path, stop: int) -> None:
    ledger_path = tmp_path / "ledger.sqlite"
    config = tmp_path / "demo.toml"
    config.write_text(f'[ledger]\npath = "{ledger_path}"\n', encoding="utf-8")
    first = demo(config, tmp_path / "first.err")
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
            if ledger_path.exists() and len(alerted_lots(stored_alerts(ledger_path))) >= 5:
                break
        time.sleep(2.0)  # more alerts, and re-arms, after the first ones
        first.send_signal(stop)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    before = stored_alerts(ledger_path)
    assert len(alerted_lots(before)) >= 5, (tmp_path / "first.err").read_text()[-3000:]

    second = demo(config, tmp_path / "second.err", "--duration", "12")
    assert second.wait(timeout=120) == 0, (tmp_path / "second.err").read_text()[-3000:]
    err = (tmp_path / "second.err").read_text()
    after = stored_alerts(ledger_path)[len(before) :]
    repeated = alerted_lots(before) & alerted_lots(after)
    assert not repeated, f"{len(repeated)} lots alerted again after the restart: {repeated}"
    assert "lot alert state restored" in err
    restored = [json.loads(line) for line in err.splitlines() if "state restored" in line]
    assert restored and restored[0]["lots"] >= len(alerted_lots(before))
    detected = [int(m) for m in re.findall(r"detected (\d+)", err)]
    assert max(detected, default=0) > 0, err[-3000:]  # it ran on ticks
