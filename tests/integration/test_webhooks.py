"""Webhook subscriptions against a real HTTP receiver on loopback (aiohttp.web)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from monitor.alerts.filter import AlertFilter
from monitor.alerts.outbox import WebhookSink
from monitor.alerts.redelivery import redeliver
from monitor.alerts.retry import RetryPolicy
from monitor.alerts.schema import encode_alert
from monitor.alerts.store import AlertStore
from monitor.alerts.webhook import ATTEMPTS, DEAD_LETTERED, QUEUE_DEPTH, WebhookTarget
from monitor.ledger.ledger import Ledger
from tests.alerting import STORES, eventually, open_store, publish, sample_alert
from tests.webhook_receiver import SECRET, Receiver

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.01, max_delay_s=2.0)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    yield from open_store(request.param, tmp_path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def target(url: str, name: str = "hook", **kw: object) -> WebhookTarget:
    """A subscription for these tests: no age limit unless asked (the sample alerts were
    emitted on 2026-03-01), the default concurrency unless asked."""
    defaults: dict[str, object] = {
        "secret": SECRET,
        "policy": FAST,
        "timeout_s": 5.0,
        "max_age_s": 0.0,
    }
    defaults.update(kw)
    return WebhookTarget(name=name, url=url, **defaults)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_failures_and_429_are_retried_and_every_alert_arrives_once_signed(
    receiver: Receiver, store: AlertStore
) -> None:
    alerts = [sample_alert(i) for i in range(6)]
    first = alerts[0].alert_id

    def script(alert_id: str, tries: int) -> tuple[int, dict[str, str]]:
        if alert_id == first:  # 503, then 429 asking for 1 s, then OK
            return {1: (503, {}), 2: (429, {"Retry-After": "1"})}.get(tries, (200, {}))
        return (500, {}) if tries == 1 else (200, {})

    receiver.script = script
    sink = WebhookSink(target(receiver.url, concurrency=1), store)
    await sink.start()
    try:
        await publish(store, [sink], alerts[:3])
        await publish(store, [sink], alerts[3:])
        await sink.drain()
    finally:
        await sink.stop()
    assert receiver.accepted == Counter({a.alert_id: 1 for a in alerts})
    assert receiver.order == [a.alert_id for a in alerts]  # one worker: order kept
    assert receiver.bad_signatures == 0
    assert store.dead_letters() == []
    times = [t for aid, status, t in receiver.attempts if aid == first]
    statuses = [status for aid, status, _ in receiver.attempts if aid == first]
    assert statuses == [503, 429, 200]
    assert times[2] - times[1] >= 1.0  # Retry-After honoured (never sooner)
    assert json.loads(receiver.bodies[0])["alert_id"] == first  # the alert JSON itself
    assert receiver.headers[-1]["X-HM-Delivery-Attempt"] == "2"


async def test_dead_receiver_fills_the_dead_letter_table_and_redeliver_empties_it(
    store: AlertStore,
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    dead = Receiver()
    dead.port = port
    before = DEAD_LETTERED.labels("hook", "retries_exhausted")._value.get()
    sink = WebhookSink(target(dead.url, policy=RetryPolicy(3, 0.01, 0.05)), store)
    await sink.start()
    alerts = [sample_alert(i) for i in range(5)]
    try:
        await publish(store, [sink], alerts)
        await sink.drain()
    finally:
        await sink.stop()
    letters = store.dead_letters("hook")
    assert sorted(d.alert_id for d in letters) == sorted(a.alert_id for a in alerts)
    assert all(d.attempts == 3 and "Connect" in d.last_error for d in letters)
    assert DEAD_LETTERED.labels("hook", "retries_exhausted")._value.get() - before == 5

    await dead.start(port)  # the receiver comes back
    try:
        report = await redeliver(store, {"hook": target(dead.url)})
        again = await redeliver(store, {"hook": target(dead.url)})
    finally:
        await dead.stop()
    assert (report.delivered, report.remaining) == (5, 0)
    assert store.dead_letters() == []
    assert dead.accepted == Counter({a.alert_id: 1 for a in alerts})
    assert dead.bad_signatures == 0
    assert again.delivered == 0


async def test_redeliver_keeps_letters_that_fail_again_or_lost_their_subscription(
    store: AlertStore,
) -> None:
    body = sample_alert(1)
    store.add_dead_letter("hook", body.alert_id, encode_alert(body), 3, "x")
    store.add_dead_letter("gone", body.alert_id, encode_alert(body), 3, "x")
    url = f"http://127.0.0.1:{free_port()}/x"
    report = await redeliver(store, {"hook": target(url)}, attempts=1)
    assert (report.delivered, report.failed, report.unknown_subscription) == (0, 1, 1)
    assert len(store.dead_letters()) == 2
    assert any("'gone' is not in [[webhooks]]" in e for e in report.errors)


async def test_a_4xx_rejection_is_dead_lettered_without_retrying(
    receiver: Receiver, store: AlertStore
) -> None:
    receiver.script = lambda _id, _n: (410, {})
    sink = WebhookSink(target(receiver.url), store)
    await sink.start()
    try:
        await publish(store, [sink], [sample_alert(1)])
        await sink.drain()
    finally:
        await sink.stop()
    (letter,) = store.dead_letters()
    assert letter.attempts == 1 and "HTTP 410" in letter.last_error
    assert len(receiver.attempts) == 1


async def test_a_stuck_receiver_never_blocks_send_nor_the_other_subscription(
    receiver: Receiver, store: AlertStore
) -> None:
    stuck = Receiver(hold=asyncio.Event())
    await stuck.start()
    slow = WebhookSink(target(stuck.url, name="stuck", queue_size=2, concurrency=1), store)
    fast = WebhookSink(target(receiver.url, name="fast"), store)
    for s in (slow, fast):
        await s.start()
    alerts = [sample_alert(i) for i in range(10)]
    try:
        for alert in alerts:  # one at a time, so the stuck worker has taken the first
            await asyncio.wait_for(publish(store, [slow, fast], [alert]), 5)
            await asyncio.sleep(0.01)
        await fast.drain()
        assert receiver.accepted == Counter({a.alert_id: 1 for a in alerts})
        # stuck: its backlog waits in the ledger (read 2 at a time), nothing dead-lettered
        assert stuck.accepted == Counter() and store.dead_letters() == []
        assert QUEUE_DEPTH.labels("stuck")._value.get() == 10
        assert stuck.hold is not None
        stuck.hold.set()
        await slow.drain()
        assert stuck.order == [a.alert_id for a in alerts]  # all of them, in order, once
        assert QUEUE_DEPTH.labels("stuck")._value.get() == 0
    finally:
        for s in (slow, fast):
            await s.stop()
        await stuck.stop()


async def test_stop_keeps_what_was_not_delivered_for_the_next_start(store: AlertStore) -> None:
    """The receiver is down: stop (no grace) dead-letters nothing; the next start over the
    same store, with the receiver back, delivers each alert exactly once."""
    down = Receiver()
    down.port = free_port()  # nothing listens: connection refused, retried
    patient = RetryPolicy(max_attempts=1000, initial_delay_s=0.01, max_delay_s=0.05)
    sink = WebhookSink(target(down.url, policy=patient), store, stop_grace_s=0.0)
    await sink.start()
    alerts = [sample_alert(i) for i in range(4)]
    await publish(store, [sink], alerts)
    await asyncio.sleep(0.1)  # a few failed attempts of the first alert
    await sink.stop()
    assert store.dead_letters() == []
    assert store.cursor("webhook:hook") == 0  # nothing handled

    await down.start(down.port)  # back up; a new process over the same ledger
    again = WebhookSink(target(down.url, concurrency=1), store)
    await again.start()
    try:
        await again.drain()
    finally:
        await again.stop()
        await down.stop()
    assert down.accepted == Counter({a.alert_id: 1 for a in alerts})
    assert down.order == [a.alert_id for a in alerts]
    assert store.cursor("webhook:hook") == store.last_seq()


async def test_a_new_subscription_is_not_sent_history(
    receiver: Receiver, store: AlertStore
) -> None:
    old = [sample_alert(i) for i in range(3)]
    await publish(store, [], old)  # recorded before the subscription existed
    sink = WebhookSink(target(receiver.url, name="late"), store)
    await sink.start()
    new = [sample_alert(i) for i in range(3, 5)]
    try:
        assert store.cursor("webhook:late") == store.last_seq() == 3
        await publish(store, [sink], old + new)  # the old ones again: known, not re-sent
        await sink.drain()
    finally:
        await sink.stop()
    assert receiver.order == [a.alert_id for a in new]


async def test_slack_format_posts_a_slack_message(receiver: Receiver, store: AlertStore) -> None:
    receiver.secret = None
    sink = WebhookSink(target(receiver.url, format="slack", secret=None), store)
    await sink.start()
    alert = sample_alert(7, asset="ETH")
    try:
        await publish(store, [sink], [alert])
        await sink.drain()
    finally:
        await sink.stop()
    message = json.loads(receiver.bodies[0])
    assert set(message) == {"text", "blocks"}
    assert "ETH" in message["text"] and "$120.00" in message["text"]
    assert [b["type"] for b in message["blocks"]] == ["section", "section", "context"]
    fields = message["blocks"][1]["fields"]
    assert 0 < len(fields) <= 10 and all(f["type"] == "mrkdwn" for f in fields)
    assert alert.alert_id in message["blocks"][2]["elements"][0]["text"]
    assert "webhook-signature" not in receiver.headers[0]  # no secret: unsigned
    assert receiver.headers[0]["webhook-id"] == alert.alert_id  # still the dedup key


async def test_discord_format_posts_an_embed_signed_when_a_secret_is_set(
    receiver: Receiver, store: AlertStore
) -> None:
    sink = WebhookSink(target(receiver.url, format="discord"), store)
    await sink.start()
    try:
        await publish(store, [sink], [sample_alert(3)])
        await sink.drain()
    finally:
        await sink.stop()
    message = json.loads(receiver.bodies[0])
    assert message["content"].startswith("Harvest BTC")
    (embed,) = message["embeds"]
    assert embed["timestamp"] == sample_alert(3).tick_ts
    assert len(embed["fields"]) <= 25 and message["allowed_mentions"] == {"parse": []}
    assert receiver.bad_signatures == 0 and receiver.headers[0]["webhook-signature"]


async def test_the_filter_decides_what_a_subscription_receives(
    receiver: Receiver, store: AlertStore
) -> None:
    only = AlertFilter.of(accounts=["acct-2"], min_net_benefit_usd="50")
    sink = WebhookSink(target(receiver.url, filter=only), store)
    await sink.start()
    wanted = sample_alert(1, account="acct-2", net_benefit="50.00")
    try:
        await publish(
            store,
            [sink],
            [
                sample_alert(2, account="acct-1"),
                sample_alert(3, account="acct-2", net_benefit="49.99"),
                wanted,
            ],
        )
        await sink.drain()
    finally:
        await sink.stop()
    assert list(receiver.accepted) == [wanted.alert_id]


async def test_a_receiver_slower_than_timeout_s_is_retried(
    receiver: Receiver, store: AlertStore
) -> None:
    receiver.slow_first_s = 0.4  # answers after the sender gave up
    before = ATTEMPTS.labels("hook", "timeout")._value.get()
    sink = WebhookSink(target(receiver.url, timeout_s=0.1), store)
    await sink.start()
    alert = sample_alert(1)
    try:
        await publish(store, [sink], [alert])
        await sink.drain()
    finally:
        await sink.stop()
    assert [status for _, status, _ in receiver.attempts] == [0, 200]
    assert ATTEMPTS.labels("hook", "timeout")._value.get() - before == 1
    assert store.dead_letters() == []
    assert receiver.headers[-1]["webhook-id"] == alert.alert_id  # the receiver's dedup key


CRASHING_PROCESS = """
import asyncio, sys
from monitor.alerts.outbox import WebhookSink
from monitor.alerts.retry import RetryPolicy
from monitor.alerts.webhook import WebhookTarget
from monitor.ledger.ledger import Ledger
from tests.alerting import publish, sample_alert
from tests.webhook_receiver import SECRET

async def main(path: str, url: str) -> None:
    ledger = Ledger(path).open()
    policy = RetryPolicy(max_attempts=1000, initial_delay_s=0.05, max_delay_s=0.2)
    hook = WebhookTarget("hook", url, secret=SECRET, policy=policy, max_age_s=0.0)
    sink = WebhookSink(hook, ledger.alerts)
    await sink.start()
    await publish(ledger.alerts, [sink], [sample_alert(i) for i in range(5)])
    print("recorded", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_process_loses_nothing_and_repeats_nothing(
    receiver: Receiver, tmp_path: Path
) -> None:
    """A monitor process records 5 alerts; the receiver takes 2, then answers 503; the
    process is killed (SIGKILL) while retrying the 3rd. A new process over the same
    ledger file, with the receiver well again, sends the other 3: each arrives once."""
    path = tmp_path / "ledger.sqlite"
    alerts = [sample_alert(i) for i in range(5)]
    healthy = False

    def script(alert_id: str, _tries: int) -> tuple[int, dict[str, str]]:
        return (200, {}) if healthy or len(receiver.accepted) < 2 else (503, {})

    receiver.script = script
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_PROCESS,
        str(path),
        receiver.url,
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"recorded\n"
        third = alerts[2].alert_id
        await eventually(
            lambda: sum(1 for a in receiver.attempts if a[0] == third) >= 2,
            "the 3rd alert retried after 503",
        )
    finally:
        proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    healthy = True
    ledger = Ledger(path).open()
    try:
        assert ledger.alerts.cursor("webhook:hook") == 2  # the 2 delivered, durably
        sink = WebhookSink(target(receiver.url), ledger.alerts)
        await sink.start()
        try:
            await sink.drain()
        finally:
            await sink.stop()
        assert ledger.alerts.dead_letters() == []
        assert ledger.alerts.cursor("webhook:hook") == 5
    finally:
        ledger.close()
    assert receiver.accepted == Counter({a.alert_id: 1 for a in alerts})
    assert receiver.order == [a.alert_id for a in alerts]
    assert receiver.bad_signatures == 0
