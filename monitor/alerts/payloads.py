"""Webhook bodies: the alert JSON itself, or a message Slack, Discord or Telegram can post.

`json` sends the exact hm.alert/1 bytes. `slack` is an incoming-webhook message (`text`
as the notification fallback plus Block Kit `blocks`); `discord` is an execute-webhook
message (`content` plus one embed); `telegram` is a Bot API `sendMessage` call (HTML
text of short lines, for a phone). Every chat format carries the alert id, so a reader
can find the alert in the ledger or the `hm.alerts` topic.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any, Literal

import msgspec

from monitor.alerts.schema import Alert

Format = Literal["json", "slack", "discord", "telegram"]
FORMATS: tuple[Format, ...] = ("json", "slack", "discord", "telegram")
TELEGRAM_LINE = 40  # characters a phone shows on one line without wrapping, roughly
TELEGRAM_MAX_CHARS = 4096  # the Bot API's limit on a message's text (after entities)
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


def _h(text: object) -> str:
    """Text for Telegram's HTML mode: `&`, `<` and `>` as entities (the Bot API's rule for
    every such character outside a tag; quotes need no escaping outside attributes)."""
    return html.escape(str(text), quote=False)


def telegram_text(alert: Alert) -> str:
    """An alert as Telegram HTML: one fact per short line, the figures in bold."""
    title = KIND_TITLES.get(alert.kind, alert.kind.replace("_", " ").capitalize()).rstrip(":")
    lots = len(alert.lot_ids)
    lines = [
        f"<b>{_h(title)} {_h(alert.asset)}</b>",
        f"{_h(alert.account)} / {_h(alert.wallet)} · {lots} lot{'s' if lots != 1 else ''}",
    ]
    if alert.kind == "wash_warning":  # a buy, not a sale: what it puts at risk
        lines += [
            f"Bought {_h(alert.quantity)} @ ${_h(alert.price)}",
            f"Loss at risk <b>${_h(alert.loss_usd)}</b>",
        ]
    else:
        lines += [
            f"Loss <b>${_h(alert.loss_usd)}</b>",
            f"Net benefit <b>${_h(alert.net_benefit_usd)}</b>",
            f"Sell {_h(alert.quantity)} @ ${_h(alert.price)}",
            f"on {_h(alert.venue)} · {alert.venues} venue{'s' if alert.venues != 1 else ''}",
            f"Short ${_h(alert.short_term_loss_usd)} · long ${_h(alert.long_term_loss_usd)}",
            f"Tax saved ${_h(alert.tax_savings_usd)}",
            f"Costs ${_h(alert.cost_usd)}",
        ]
    plan = alert.plan
    if plan is not None:
        if plan.rebuy.mode != "none":
            what = plan.rebuy.asset or alert.asset
            when = f" from {plan.rebuy.not_before}" if plan.rebuy.not_before else ""
            lines.append(f"Rebuy {_h(what)}{_h(when)}")
        if plan.deadline:
            lines.append(f"Deadline {_h(plan.deadline)}")
        if plan.do_not_buy_until:
            lines.append(f"No buy until {_h(plan.do_not_buy_until)}")
        for warning in plan.warnings:
            wrapped = textwrap.wrap(warning, TELEGRAM_LINE - 2) or [""]
            lines += [f"⚠ <i>{_h(wrapped[0])}</i>", *(f"<i>{_h(w)}</i>" for w in wrapped[1:])]
    lines.append(f"Tick {_h(alert.tick_ts[:19].replace('T', ' '))} UTC")
    lines.append(f"<code>{_h(alert.alert_id)}</code>")
    lines.append("<i>Not tax advice</i>")
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    """Within the Bot API's 4096 characters: cut whole lines from the end (warnings)."""
    lines = text.split("\n")
    while len(text) > TELEGRAM_MAX_CHARS and len(lines) > 4:
        del lines[-4]  # keep the tick time, the alert id and the disclaimer
        text = "\n".join(lines)
    return text


def telegram_message(alert: Alert, chat_id: str) -> dict[str, Any]:
    """A Bot API `sendMessage` request: HTML text, no link preview."""
    return {
        "chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
        "text": telegram_text(alert),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


def webhook_body(fmt: Format, alert: Alert, encoded: bytes, chat_id: str = "") -> bytes:
    """The POST body for `fmt`: the alert's own bytes for json; `chat_id` for telegram."""
    if fmt == "json":
        return encoded
    if fmt == "slack":
        return _encoder.encode(slack_message(alert))
    if fmt == "telegram":
        return _encoder.encode(telegram_message(alert, chat_id))
    return _encoder.encode(discord_message(alert))
