"""The subscription channels built from settings: ledger recorder, webhooks, websocket.

`subscription_sinks` gives them in the order `emit` must call them: the recorder first
(so anything a subscriber is sent is already in the ledger, and only alerts new to the
ledger go further), then one sink per `[[webhooks]]` entry (each follows the ledger from
its own cursor, monitor/alerts/outbox.py), then the `/v1/alerts` server when
`[subscriptions] websocket_port` is set. None of them waits on a subscriber.
"""

from __future__ import annotations

from collections.abc import Mapping

from monitor.alerts.interface import AlertSink
from monitor.alerts.outbox import WebhookSink
from monitor.alerts.recording import RecordingSink
from monitor.alerts.store import AlertStore
from monitor.alerts.subscriptions import SubscriptionServer
from monitor.alerts.tokens import TokenRegistry
from monitor.alerts.webhook import webhook_targets
from monitor.errors import ConfigError
from monitor.ledger.ledger import Ledger
from monitor.settings import Settings


def subscriptions_ledger(settings: Settings) -> Ledger | None:
    """The ledger (not yet open) when a subscription channel needs it, else None."""
    if settings.webhooks or settings.subscriptions.websocket_port:
        return Ledger(settings.ledger.path)
    return None


def subscription_sinks(
    settings: Settings, store: AlertStore | None, env: Mapping[str, str] | None = None
) -> list[AlertSink]:
    """Recorder, webhooks and websocket server; raises ConfigError for a missing secret."""
    subs = settings.subscriptions
    if store is None:
        if settings.webhooks or subs.websocket_port:
            raise ConfigError(
                "[[webhooks]] and [subscriptions] websocket_port need the ledger "
                "(dead letters, since= replays): configure [ledger]"
            )
        return []
    sinks: list[AlertSink] = [RecordingSink(store)]
    sinks += [WebhookSink(target, store) for target in webhook_targets(settings.webhooks, env)]
    if subs.websocket_port:
        sinks.append(
            SubscriptionServer(
                store,
                TokenRegistry((t.name, t.sha256) for t in subs.tokens),
                host=subs.host,
                port=subs.websocket_port,
                queue_size=subs.queue_size,
                send_timeout_s=subs.send_timeout_s,
                subscribe_timeout_s=subs.subscribe_timeout_s,
            )
        )
    return sinks
