"""Webhook bodies: the alert JSON itself, or a message Slack or Discord can post.

`json` sends the exact hm.alert/1 bytes. `slack` is an incoming-webhook message (`text`
as the notification fallback plus Block Kit `blocks`); `discord` is an execute-webhook
message (`content` plus one embed). Both chat formats carry the alert id, so a reader can
find the alert in the ledger or the `hm.alerts` topic.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from monitor.alerts.schema import Alert

Format = Literal["json", "slack", "discord"]
FORMATS: tuple[Format, ...] = ("json", "slack", "discord")
DISCORD_COLOR = 0xD9534F  # a loss: red
_encoder = msgspec.json.Encoder()


KIND_TITLES = {
    "harvest": "Harvest",
    "deadline": "Harvest deadline:",
    "wash_warning": "Wash-sale warning:",
}


def headline(alert: Alert) -> str:
    """One line a human reads first: what kind, where, what it is worth."""
    lots = len(alert.lot_ids)
    title = KIND_TITLES.get(alert.kind, alert.kind.replace("_", " ").capitalize() + ":")
    by = f" by {alert.plan.deadline}" if alert.plan is not None and alert.plan.deadline else ""
    return (
        f"{title} {alert.asset} in {alert.account}/{alert.wallet}{by}: loss ${alert.loss_usd} "
        f"on {lots} lot{'s' if lots != 1 else ''}, net benefit ${alert.net_benefit_usd}"
    )


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The figures worth showing in a chat message, as (label, value)."""
    return [
        ("Price", f"${alert.price} ({alert.symbol} on {alert.venue})"),
        ("Quantity", alert.quantity),
        ("Loss", f"${alert.loss_usd}"),
        ("Short / long term", f"${alert.short_term_loss_usd} / ${alert.long_term_loss_usd}"),
        ("Tax savings", f"${alert.tax_savings_usd}"),
        ("Costs", f"${alert.cost_usd}"),
        ("Net benefit", f"${alert.net_benefit_usd}"),
        ("Tick time", alert.tick_ts),
    ]


def warnings(alert: Alert) -> list[str]:
    """The plan's warnings (wash sale, rebuy wait, ...), if the alert has a plan."""
    return list(alert.plan.warnings) if alert.plan is not None else []


def slack_message(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback `text` and Block Kit sections."""
    return {
        "text": headline(alert),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline(alert)}*"}},
            {
                "type": "section",
                "fields": [  # Slack allows at most 10 fields per section
                    {"type": "mrkdwn", "text": f"*{label}*\n{value}"}
                    for label, value in facts(alert)
                ],
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": text[:3000]}  # Slack's limit per text object
                    for text in [f"alert `{alert.alert_id}` · not tax advice", *warnings(alert)]
                ],
            },
        ],
    }


def discord_message(alert: Alert) -> dict[str, Any]:
    """A Discord execute-webhook message: short `content` and one embed with fields."""
    return {
        "username": "harvest-monitor",
        "content": headline(alert),
        "embeds": [
            {
                "title": f"Tax-loss harvest: {alert.asset}",
                "description": f"{alert.account}/{alert.wallet} · lots {', '.join(alert.lot_ids)}"[
                    :4096
                ],
                "color": DISCORD_COLOR,
                "fields": [
                    {"name": label, "value": value, "inline": True} for label, value in facts(alert)
                ],
                "timestamp": alert.tick_ts,
                "footer": {
                    "text": " · ".join(
                        [f"alert {alert.alert_id}", "not tax advice", *warnings(alert)]
                    )[:2048]
                },
            }
        ],
        "allowed_mentions": {"parse": []},  # an asset or wallet name never pings anyone
    }


def webhook_body(fmt: Format, alert: Alert, encoded: bytes) -> bytes:
    """The POST body for `fmt`: the alert's own bytes for json."""
    if fmt == "json":
        return encoded
    if fmt == "slack":
        return _encoder.encode(slack_message(alert))
    return _encoder.encode(discord_message(alert))
