"""A sink that fails every batch (stdout whose reader went away: `demo | head -1`) is
logged once per interval with a count, not once per batch; detection and the other sinks
go on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from monitor import stages
from monitor.alerts.interface import AlertSink
from monitor.alerts.schema import Alert
from monitor.stages import SinkFailures, emit
from tests.alerting import sample_alert


class ClosedPipe:
    name = "stdout"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        raise BrokenPipeError(32, "Broken pipe")


class Kept:
    name = "kept"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def __init__(self) -> None:
        self.got: list[str] = []

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        self.got.extend(alert.alert_id for alert, _ in alerts)


def test_a_sink_failing_every_batch_is_logged_once_per_interval_with_a_count(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    monkeypatch.setattr(stages, "SINK_FAILURES", SinkFailures(10.0, clock=lambda: now[0]))
    kept = Kept()
    sinks: list[AlertSink] = [ClosedPipe(), kept]
    caplog.set_level(logging.ERROR, logger="monitor.stages")

    async def batches(n: int) -> None:
        for i in range(n):
            await emit(sinks, [sample_alert(i)], 0)

    asyncio.run(batches(50))
    assert [r.getMessage() for r in caplog.records] == ["alert sink failed: [Errno 32] Broken pipe"]
    assert len(kept.got) == 50  # the other sink had every alert
    now[0] += 10.0  # the interval is over: the next failure is logged, with the 49 held back
    asyncio.run(batches(1))
    assert len(caplog.records) == 2 and caplog.records[1].repeated == 49  # type: ignore[attr-defined]
