"""The sink interface: each alert channel (stdout, file, Kafka, webhook, ...) is a plug-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.alerts.schema import Alert


class AlertSink(Protocol):
    """Takes alerts with their encoded JSON; `send` must not block detection for long."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None: ...
