"""Bus sink: alerts published to the `hm.alerts` topic, keyed by account."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.alerts.schema import Alert
from streams.bus.interface import Producer


class BusSink:
    """Publishes alerts keyed by account, so one account's alerts stay in order."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.name = f"bus:{topic}"
        self._producer = producer
        self._topic = topic

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, alerts: Sequence[tuple[Alert, bytes]]) -> None:
        await self._producer.publish_many(
            self._topic, [(alert.account.encode(), payload) for alert, payload in alerts]
        )
        await self._producer.flush()
