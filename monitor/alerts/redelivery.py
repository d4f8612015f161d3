"""Replaying the dead-letter table: `harvest-monitor alerts redeliver`.

Each dead letter is sent again to its subscription (as configured now: a fixed URL or a
rotated secret applies), with that subscription's retry policy capped at `attempts`. A
delivered letter is removed; one that fails again stays where it is, so running the
command twice never loses or duplicates a letter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import aiohttp
import msgspec

from monitor.alerts.retry import RetryPolicy
from monitor.alerts.schema import decode_alert
from monitor.alerts.store import AlertStore
from monitor.alerts.webhook import DELIVERIES, Sleep, WebhookTarget, deliver

log = logging.getLogger(__name__)


@dataclass
class RedeliveryReport:
    """Counts per outcome, and why the letters that are still there failed."""

    delivered: int = 0
    failed: int = 0
    unknown_subscription: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.failed + self.unknown_subscription


async def redeliver(
    store: AlertStore,
    targets: Mapping[str, WebhookTarget],
    subscription: str | None = None,
    *,
    attempts: int | None = None,
    session: aiohttp.ClientSession | None = None,
    sleep: Sleep | None = None,
) -> RedeliveryReport:
    """Send every dead letter (of `subscription`, or all) again; remove the delivered ones."""
    report = RedeliveryReport()
    own = session is None
    http = session or aiohttp.ClientSession()
    try:
        for letter in store.dead_letters(subscription):
            target = targets.get(letter.subscription)
            if target is None:
                report.unknown_subscription += 1
                report.errors.append(
                    f"dead letter {letter.id} ({letter.alert_id}): subscription "
                    f"{letter.subscription!r} is not in [[webhooks]]; kept"
                )
                continue
            if attempts is not None:
                policy = target.policy
                target = replace(
                    target, policy=RetryPolicy(attempts, policy.initial_delay_s, policy.max_delay_s)
                )
            try:
                alert = decode_alert(letter.body)
            except msgspec.DecodeError as exc:
                report.failed += 1
                report.errors.append(f"dead letter {letter.id}: not an hm.alert/1 body: {exc}")
                continue
            result = await deliver(http, target, alert, letter.body, sleep=sleep or asyncio.sleep)
            if result.ok:
                store.remove_dead_letter(letter.id)
                report.delivered += 1
                DELIVERIES.labels(target.name, "redelivered").inc()
                log.info(
                    "dead letter redelivered",
                    extra={"subscription": target.name, "alert_id": alert.alert_id},
                )
            else:
                report.failed += 1
                report.errors.append(
                    f"dead letter {letter.id} ({letter.alert_id}) to {target.name!r}: "
                    f"{result.error}; kept"
                )
    finally:
        if own:
            await http.close()
    return report
