"""`harvest-monitor alerts ...` as a subprocess: token, tail, dead-letters, redeliver.

The servers (websocket subscriptions, webhook receiver) run in the test's event loop on
loopback; the CLI talks to them like an operator's terminal would.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.alerts.schema import encode_alert
from monitor.alerts.subscriptions import SubscriptionServer
from monitor.alerts.tokens import TokenRegistry, new_token, token_hash
from monitor.ledger.ledger import Ledger
from tests.alerting import eventually, publish, sample_alert
from tests.webhook_receiver import SECRET, Receiver

REPO = Path(__file__).parents[2]


async def cli(
    *args: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        *args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = Ledger(tmp_path / "ledger.sqlite").open()
    yield opened
    opened.close()


async def test_token_prints_a_token_and_the_hash_to_configure() -> None:
    code, out, _ = await cli("alerts", "token", "--name", "ops")
    assert code == 0
    lines = out.splitlines()
    token = lines[1]
    assert token.startswith("hmt_")
    assert f'sha256 = "{token_hash(token)}"' in out and 'name = "ops"' in out
    code, out, _ = await cli("alerts", "token", "--hash-stdin", stdin=b"hmt_given\n")
    assert code == 0 and token_hash("hmt_given") in out and "hmt_given" not in out


async def test_tail_prints_missed_and_live_alerts_and_never_the_token(ledger: Ledger) -> None:
    token = new_token()
    server = SubscriptionServer(ledger.alerts, TokenRegistry([("ops", token_hash(token))]))
    await server.start()
    alerts = [sample_alert(i, asset="ETH" if i % 2 else "BTC") for i in range(8)]
    try:
        await publish(ledger.alerts, [server], alerts[:4])
        tail = asyncio.create_task(
            cli(
                "alerts",
                "tail",
                "--url",
                server.url,
                "--since",
                alerts[0].alert_id,
                "--asset",
                "ETH",
                "--count",
                "3",
                env={"HM_ALERTS_TOKEN": token},
            )
        )
        await eventually(lambda: server.subscriber_count == 1 or tail.done(), "tail subscribed")
        await publish(ledger.alerts, [server], alerts[4:])
        code, out, err = await tail
    finally:
        await server.stop()
    assert code == 0, err
    # ETH alerts after alerts[0]: 1 and 3 replayed, then 5 live; exact hm.alert/1 bytes
    assert out.encode().splitlines() == [encode_alert(alerts[i]) for i in (1, 3, 5)]
    assert "replayed 2 missed alert(s)" in err
    assert token not in out + err


async def test_tail_with_a_wrong_token_exits_with_the_servers_reason(ledger: Ledger) -> None:
    server = SubscriptionServer(ledger.alerts, TokenRegistry([("ops", token_hash(new_token()))]))
    await server.start()
    try:
        wrong = new_token()
        code, out, err = await cli(
            "alerts", "tail", "--url", server.url, env={"HM_ALERTS_TOKEN": wrong}
        )
        no_token = await cli("alerts", "tail", "--url", server.url, env={"HM_ALERTS_TOKEN": ""})
    finally:
        await server.stop()
    assert code == 2 and "HTTP 401: unknown token" in err and wrong not in out + err
    assert no_token[0] == 2 and "no token" in no_token[2]


async def test_redeliver_empties_the_dead_letter_table_of_the_ledger(
    tmp_path: Path, ledger: Ledger
) -> None:
    receiver = Receiver()
    await receiver.start()
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[ledger]\npath = "{ledger.path}"\n\n'
        f'[[webhooks]]\nname = "hook"\nurl = "{receiver.url}"\nsecret_env = "HOOK_SECRET"\n'
        "backoff_initial_s = 0.01\n",
        encoding="utf-8",
    )
    alerts = [sample_alert(i) for i in range(3)]
    for alert in alerts:
        ledger.alerts.add_dead_letter("hook", alert.alert_id, encode_alert(alert), 8, "HTTP 503")
    ledger.alerts.add_dead_letter("retired", alerts[0].alert_id, encode_alert(alerts[0]), 8, "x")
    env = {"HOOK_SECRET": SECRET.decode()}
    try:
        listed = await cli("alerts", "dead-letters", "--config", str(config), env=env)
        only_hook = await cli(
            "alerts", "redeliver", "--config", str(config), "--subscription", "hook", env=env
        )
        everything = await cli("alerts", "redeliver", "--config", str(config), env=env)
    finally:
        await receiver.stop()
    assert listed[0] == 0 and len(listed[1].splitlines()) == 4
    assert only_hook[0] == 0 and "redelivered 3, still dead 0" in only_hook[1]
    assert receiver.accepted == Counter(a.alert_id for a in alerts)
    assert receiver.bad_signatures == 0
    assert [json.loads(b)["alert_id"] for b in receiver.bodies] == [a.alert_id for a in alerts]
    # the letter of a subscription no longer configured stays, and the exit code says so
    assert everything[0] == 1 and "'retired' is not in [[webhooks]]" in everything[2]
    assert [d.subscription for d in ledger.alerts.dead_letters()] == ["retired"]
    printed = "".join(text for run in (listed, only_hook, everything) for text in run[1:])
    assert SECRET.decode() not in printed


async def test_redeliver_refuses_a_missing_secret_naming_the_variable(
    tmp_path: Path, ledger: Ledger
) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[ledger]\npath = "{ledger.path}"\n\n'
        '[[webhooks]]\nname = "hook"\nurl = "http://127.0.0.1:9/x"\nsecret_env = "NOT_SET_X"\n',
        encoding="utf-8",
    )
    code, _, err = await cli("alerts", "redeliver", "--config", str(config), env={"NOT_SET_X": ""})
    assert code == 2 and "environment variable NOT_SET_X" in err
