"""A receiver that hangs or fails does not hold its subscription's queue (issue 10, item 6).

Real aiohttp receivers on loopback (tests/webhook_receiver.py) that hang or answer 500;
the subscription delivers `concurrency` alerts at once, dead-letters an alert older than
`max_age_s` instead of sending it late, keeps its ledger cursor a contiguous watermark
(never past an alert not yet delivered or dead-lettered), reports an exact backlog and
stops within its grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from monitor.alerts.outbox import WebhookSink
from monitor.alerts.retry import RetryPolicy
from monitor.alerts.schema import Alert
from monitor.alerts.store import AlertStore
from monitor.alerts.webhook import DEAD_LETTERED, IN_FLIGHT, QUEUE_DEPTH, WebhookTarget
from tests.alerting import STORES, eventually, iso, open_store, publish, sample_alert
from tests.webhook_receiver import SECRET, Receiver


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    yield from open_store(request.param, tmp_path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


def emitted(n: int, age_s: float = 0.0) -> Alert:
    """The n-th sample alert, emitted `age_s` seconds ago (as a live alert would be)."""
    when = datetime.now(UTC) - timedelta(seconds=age_s)
    return msgspec.structs.replace(sample_alert(n), emitted_at=iso(when))


def target(url: str, name: str = "hook", **kw: object) -> WebhookTarget:
    defaults: dict[str, object] = {
        "secret": SECRET,
        "policy": RetryPolicy(max_attempts=8, initial_delay_s=5.0, max_delay_s=60.0),
        "timeout_s": 30.0,
        "concurrency": 4,
        "max_age_s": 900.0,
    }
    defaults.update(kw)
    return WebhookTarget(name=name, url=url, **defaults)  # type: ignore[arg-type]


def gauge(name: str) -> float:
    return float(QUEUE_DEPTH.labels(name)._value.get())


async def test_a_hanging_alert_holds_one_slot_and_the_cursor_not_the_others(
    receiver: Receiver, store: AlertStore
) -> None:
    """The first alert hangs: the nine behind it are delivered meanwhile; the cursor stays
    before the hanging one and the backlog gauge says exactly 1; when it expires it is
    dead-lettered and the cursor moves past all ten."""
    alerts = [emitted(i) for i in range(10)]
    receiver.hang = {alerts[0].alert_id}
    sink = WebhookSink(target(receiver.url, name="hang", max_age_s=6.0), store)
    await sink.start()
    try:
        await publish(store, [sink], alerts)
        # the receiver counts before it answers: wait for the sink to have taken the 2xx
        await eventually(lambda: sink.backlog == 1, "the nine others delivered", 5)
        assert len(receiver.accepted) == 9
        assert receiver.order[0] != alerts[0].alert_id
        assert store.cursor("webhook:hang") == 0  # not past the alert still in flight
        assert gauge("hang") == 1 == sink.backlog
        assert IN_FLIGHT.labels("hang")._value.get() == 1
        await asyncio.wait_for(sink.drain(), 15)  # expires after 6 s: no hours-long hold
    finally:
        await sink.stop()
    (letter,) = store.dead_letters("hang")
    assert letter.alert_id == alerts[0].alert_id and "max_age_s" in letter.last_error
    assert store.cursor("webhook:hang") == store.last_seq() == 10
    assert gauge("hang") == 0
    assert receiver.accepted == Counter({a.alert_id: 1 for a in alerts[1:]})


async def test_a_failing_receiver_is_tried_concurrently_and_old_alerts_dead_lettered(
    receiver: Receiver, store: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Every POST answers 500 (the issue: in 80 s only the first alert was tried). With
    concurrency 4 four alerts are tried at once; none is retried past max_age_s; the
    retries are logged at WARNING, a line per interval rather than per attempt."""
    receiver.script = lambda _id, _n: (500, {})
    before = DEAD_LETTERED.labels("fail", "expired")._value.get()
    policy = RetryPolicy(max_attempts=100, initial_delay_s=0.2, max_delay_s=0.4)
    sink = WebhookSink(target(receiver.url, name="fail", policy=policy, max_age_s=2.0), store)
    alerts = [emitted(i) for i in range(8)]
    caplog.set_level(logging.WARNING, "monitor.alerts.webhook")
    await sink.start()
    started = time.monotonic()
    try:
        await publish(store, [sink], alerts)
        await eventually(lambda: len(set(receiver.started)) >= 4, "four alerts tried", 2)
        assert len(set(receiver.started[:4])) == 4  # four different alerts, not one retried
        await asyncio.wait_for(sink.drain(), 10)
    finally:
        await sink.stop()
    elapsed = time.monotonic() - started
    assert elapsed < 10  # 8 alerts, 2 s each at most, 4 at a time (hours before the fix)
    assert sorted(d.alert_id for d in store.dead_letters("fail")) == sorted(
        a.alert_id for a in alerts
    )
    assert DEAD_LETTERED.labels("fail", "expired")._value.get() - before == 8
    retries = [r for r in caplog.records if r.getMessage() == "webhook attempt failed, retrying"]
    assert retries and all(r.levelno == logging.WARNING for r in retries)
    assert len(retries) < len(receiver.attempts) / 2  # rate-limited, with a count
    assert any(getattr(r, "retries_not_logged", 0) > 0 for r in retries[1:]) or len(retries) == 1


async def test_an_alert_older_than_max_age_is_dead_lettered_without_a_request(
    receiver: Receiver, store: AlertStore
) -> None:
    stale, fresh = emitted(1, age_s=2 * 3600), emitted(2)
    sink = WebhookSink(target(receiver.url, name="age", max_age_s=600.0), store)
    await sink.start()
    try:
        await publish(store, [sink], [stale, fresh])
        await sink.drain()
    finally:
        await sink.stop()
    assert receiver.started == [fresh.alert_id]  # the hours-old alert never went out
    (letter,) = store.dead_letters("age")
    assert letter.alert_id == stale.alert_id and letter.attempts == 0
    assert "older than max_age_s 600s" in letter.last_error


async def test_stop_is_bounded_and_the_watermark_loses_nothing_across_a_restart(
    store: AlertStore,
) -> None:
    """Alert 1 hangs, 2..5 are delivered; stop (grace 0.3 s) returns promptly and leaves
    the cursor before alert 1; a new sink over the same store, with the receiver healthy,
    delivers alert 1. Alerts 2..5 may come again (at least once), alert 1 is not lost."""
    first = Receiver()
    await first.start()
    alerts = [emitted(i) for i in range(5)]
    first.hang = {alerts[0].alert_id}
    sink = WebhookSink(target(first.url, stop_grace_s=0.3), store)
    await sink.start()
    try:
        await publish(store, [sink], alerts)
        await eventually(lambda: len(first.accepted) == 4, "the four others delivered", 5)
        began = time.monotonic()
        await sink.stop()
        assert time.monotonic() - began < 2.0  # grace 0.3 s, then cut off
    finally:
        await first.stop()
    assert store.cursor("webhook:hook") == 0 and store.dead_letters() == []

    second = Receiver()
    await second.start()
    again = WebhookSink(target(second.url), store)
    await again.start()
    try:
        await again.drain()
    finally:
        await again.stop()
        await second.stop()
    assert alerts[0].alert_id in second.accepted
    assert set(first.accepted) | set(second.accepted) == {a.alert_id for a in alerts}
    assert store.cursor("webhook:hook") == store.last_seq()


async def test_the_backlog_gauge_counts_alerts_after_the_cursor_exactly(
    store: AlertStore,
) -> None:
    """Nothing answers: 7 alerts wait; the gauge says 7, then 0 once they are delivered."""
    down = Receiver()
    down.port = _free_port()
    policy = RetryPolicy(max_attempts=10_000, initial_delay_s=0.02, max_delay_s=0.05)
    sink = WebhookSink(target(down.url, name="gauge", policy=policy, concurrency=2), store)
    await sink.start()
    try:
        await publish(store, [sink], [emitted(i) for i in range(7)])
        await asyncio.sleep(0.2)
        assert gauge("gauge") == 7
        await down.start(down.port)
        await asyncio.wait_for(sink.drain(), 10)
        assert gauge("gauge") == 0
    finally:
        await sink.stop()
        await down.stop()
    assert len(down.accepted) == 7


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_alert_dead_lettered_again_after_a_restart_is_one_letter(store: AlertStore) -> None:
    """Above the watermark at a crash, an alert can be dead-lettered twice: one letter."""
    store.add_dead_letter("hook", "hma_1", b"{}", 3, "HTTP 500")
    store.add_dead_letter("hook", "hma_1", b"{}", 8, "HTTP 503")
    store.add_dead_letter("other", "hma_1", b"{}", 1, "HTTP 410")
    (letter,) = store.dead_letters("hook")
    assert (letter.attempts, letter.last_error) == (8, "HTTP 503")
    assert len(store.dead_letters()) == 2
