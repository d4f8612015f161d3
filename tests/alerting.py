"""Alert delivery test kit: sample alerts, an in-memory AlertStore, and `publish`.

`MemoryAlertStore` follows monitor/alerts/store.py's contract: ids already stored are
ignored (and `record_alerts` returns the new ones), `alerts_since(id)` is strictly after
that alert, `alerts_since(time)` at or after it, in insert order; named cursors. `publish`
does what the pipeline's `emit` does: record, then fan out only the alerts that were new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.alerts.interface import AlertSink
from monitor.alerts.recording import RecordingSink
from monitor.alerts.schema import Alert, alert_id, encode_alert
from monitor.alerts.store import AlertStore, DeadLetter, StoredAlert

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STORES = ["memory", "ledger"]


def open_store(kind: str, tmp_path: Path) -> Iterator[AlertStore]:
    """For a parametrized fixture: the in-memory store, or the real SQLite ledger's."""
    if kind == "memory":
        yield MemoryAlertStore()
        return
    from monitor.ledger.ledger import Ledger

    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    try:
        yield ledger.alerts
    finally:
        ledger.close()


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def sample_alert(
    n: int, *, account: str = "acct-1", asset: str = "BTC", net_benefit: str = "120.00"
) -> Alert:
    """The n-th of a series of distinct alerts, one second apart."""
    tick_ts = iso(T0 + timedelta(seconds=n))
    return Alert(
        alert_id=alert_id("harvest", account, "w1", asset, f"L{n}", "100", tick_ts),
        account=account,
        wallet="w1",
        asset=asset,
        lot_ids=[f"L{n}"],
        quantity="1.5",
        price="100",
        cost_basis_usd="1000.00",
        proceeds_usd="150.00",
        loss_usd="850.00",
        short_term_loss_usd="850.00",
        long_term_loss_usd="0.00",
        tax_savings_usd="314.50",
        cost_usd="0.45",
        net_benefit_usd=net_benefit,
        venue="binance",
        symbol=f"{asset}/USDT",
        tick_ts=tick_ts,
        emitted_at=tick_ts,
    )


async def eventually(predicate: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    """Poll until `predicate()` holds; fail naming `what` after `within_s` (a hang guard)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


async def publish(store: AlertStore, sinks: Sequence[AlertSink], alerts: Sequence[Alert]) -> None:
    """Record the alerts, then hand the new ones to every sink (the pipeline's order)."""
    fresh = RecordingSink(store).record([(a, encode_alert(a)) for a in alerts])
    if fresh:
        for sink in sinks:
            await sink.send(fresh)


class MemoryAlertStore:
    def __init__(self) -> None:
        self.alerts: list[StoredAlert] = []
        self.letters: dict[int, DeadLetter] = {}
        self.cursors: dict[str, int] = {}
        self._next_letter = 1

    def record_alerts(self, alerts: Sequence[tuple[str, str, bytes]]) -> list[str]:
        known = {a.alert_id for a in self.alerts}
        fresh: list[str] = []
        for aid, emitted_at, body in alerts:
            if aid not in known:
                self.alerts.append(StoredAlert(len(self.alerts) + 1, aid, emitted_at, body))
                known.add(aid)
                fresh.append(aid)
        return fresh

    def alerts_after_seq(self, seq: int, limit: int = 1000) -> list[StoredAlert]:
        return self.alerts[seq : seq + limit]  # seq n is at index n - 1

    def count_after_seq(self, seq: int) -> int:
        return max(0, len(self.alerts) - seq)

    def last_seq(self) -> int:
        return len(self.alerts)

    def cursor(self, name: str) -> int | None:
        return self.cursors.get(name)

    def set_cursor(self, name: str, seq: int) -> None:
        self.cursors[name] = seq

    def alerts_since(self, since: str, limit: int = 10_000) -> list[StoredAlert]:
        for index, stored in enumerate(self.alerts):
            if stored.alert_id == since:
                return self.alerts[index + 1 : index + 1 + limit]
        if since.startswith("hma_"):
            return []
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
        return [
            a
            for a in self.alerts
            if datetime.fromisoformat(a.emitted_at.replace("Z", "+00:00")) >= when
        ][:limit]

    def add_dead_letter(
        self, subscription: str, alert_id: str, body: bytes, attempts: int, last_error: str
    ) -> None:
        same = [
            d.id
            for d in self.letters.values()
            if (d.subscription, d.alert_id) == (subscription, alert_id)
        ]
        letter_id = same[0] if same else self._next_letter
        self._next_letter += 0 if same else 1
        self.letters[letter_id] = DeadLetter(
            letter_id,
            subscription,
            alert_id,
            body,
            attempts,
            last_error,
            datetime.now(UTC).isoformat(),
        )

    def dead_letters(self, subscription: str | None = None) -> list[DeadLetter]:
        return [
            d
            for d in self.letters.values()
            if subscription is None or d.subscription == subscription
        ]

    def remove_dead_letter(self, dead_letter_id: int) -> None:
        self.letters.pop(dead_letter_id, None)
