"""`format = "telegram"` against a local fake of the Bot API's sendMessage, over real HTTP.

The fake (aiohttp on loopback) serves `POST /bot<token>/sendMessage` as the Bot API does:
`{"ok": true, "result": {...}}` on success, `{"ok": false, "error_code": 401, ...}` for a
token it does not know, and 429 with `parameters.retry_after` (no Retry-After header)
when told to. The subscription is built from settings as a user writes them, the token
from the environment; the base URL setting points it at the fake.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from monitor.alerts.outbox import WebhookSink
from monitor.alerts.schema import Alert, Plan, Rebuy
from monitor.alerts.webhook import WebhookTarget, redact_url
from monitor.errors import ConfigError
from monitor.ledger.ledger import Ledger
from monitor.settings import WebhookSettings
from tests.alerting import iso, publish, sample_alert

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the Bot API docs' example shape
CHAT = "-1001234567890"
# Bot API HTML mode: the tags a message may use (core.telegram.org/bots/api#html-style).
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a"}


class FakeBotApi:
    """sendMessage only; answers 429 with parameters.retry_after `flood` times first."""

    def __init__(self, flood: int = 0, retry_after: int = 1) -> None:
        self.flood = flood
        self.retry_after = retry_after
        self.requests: list[tuple[str, dict[str, Any], float]] = []  # token, body, time
        self.delivered: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/sendMessage", self._send_message)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send_message(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        self.requests.append((token, body, time.monotonic()))
        if token != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if self.flood > 0:
            self.flood -= 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after}",
                    "parameters": {"retry_after": self.retry_after},
                },
                status=429,
            )
        self.delivered.append(body)
        message = {
            "message_id": len(self.delivered),
            "date": int(time.time()),
            "chat": {"id": int(body["chat_id"]), "type": "supergroup", "title": "Harvests"},
            "text": "(rendered)",
        }
        return web.json_response({"ok": True, "result": message})


class TelegramHtml(HTMLParser):
    """Reads a message as Telegram's HTML mode would: tags, and the text shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.open: list[str] = []
        self.shown = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data: str) -> None:
        self.shown += data


def shown(text: str) -> TelegramHtml:
    """Parse `text` strictly by the Bot API's HTML rules, or fail the test."""
    # every & starts one of the four entities the Bot API knows; < and > only in tags
    stripped = text
    for entity in ("&lt;", "&gt;", "&amp;", "&quot;"):
        stripped = stripped.replace(entity, "")
    assert "&" not in stripped, "a bare & (must be &amp;)"
    parser = TelegramHtml()
    parser.feed(text)
    parser.close()
    assert not parser.open, f"unclosed tags {parser.open}"
    assert set(parser.tags) <= ALLOWED_TAGS, set(parser.tags) - ALLOWED_TAGS
    return parser


@pytest.fixture
async def bot() -> AsyncIterator[FakeBotApi]:
    fake = FakeBotApi()
    await fake.start()
    yield fake
    await fake.stop()


def telegram(base: str, token_env: str = "HM_TG_TOKEN", **extra: object) -> WebhookSettings:
    return WebhookSettings.model_validate(
        {
            "name": "phone",
            "format": "telegram",
            "url": base,
            "bot_token_env": token_env,
            "chat_id": CHAT,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 5.0,
            "max_attempts": 3,
            **extra,
        }
    )


def fresh(alert: Alert, **changes: Any) -> Alert:
    now = datetime.now(UTC)
    return msgspec.structs.replace(alert, emitted_at=iso(now), **changes)


def awkward_alert() -> Alert:
    """Names with every character Telegram's HTML mode needs escaped, and a long warning."""
    plan = Plan(
        jurisdiction="us",
        value_model="flat",
        lot_selection="max_loss",
        lots=[],
        sell_quantity="1.5",
        legs=2,
        rebuy=Rebuy(mode="same", not_before="2026-12-05"),
        warnings=[
            "wash sale: a buy of BTC in acct <1> & its wallets within 30 days of the "
            "sale disallows the loss (IRC §1091 if it applies to crypto)"
        ],
    )
    return fresh(sample_alert(1), account="acct <1> & co", wallet="w>2", plan=plan)


async def deliver_all(target: WebhookTarget, tmp_path: Path, alerts: list[Alert]) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    sink = WebhookSink(target, ledger.alerts)
    await sink.start()
    try:
        await publish(ledger.alerts, [sink], alerts)
        await sink.drain()
    finally:
        await sink.stop()
    return ledger


async def test_an_alert_reaches_the_chat_as_escaped_html_in_short_lines(
    bot: FakeBotApi, tmp_path: Path
) -> None:
    target = WebhookTarget.from_settings(telegram(bot.base), env={"HM_TG_TOKEN": TOKEN})
    alert = awkward_alert()
    ledger = await deliver_all(target, tmp_path, [alert])
    assert ledger.alerts.dead_letters() == []
    ledger.close()
    (body,) = bot.delivered
    assert body["chat_id"] == int(CHAT) and body["parse_mode"] == "HTML"
    assert body["link_preview_options"] == {"is_disabled": True}
    text = body["text"]
    assert len(text) <= 4096
    parsed = shown(text)
    lines = parsed.shown.splitlines()
    assert "Harvest BTC" in lines[0]
    assert "acct <1> & co / w>2 · 1 lot" in lines  # shown as written, escaped on the wire
    assert "&lt;1&gt; &amp; co" in text
    assert "Loss $850.00" in lines and "Net benefit $120.00" in lines
    assert alert.alert_id in parsed.shown and "Not tax advice" in lines
    assert max(len(line) for line in lines) <= 42  # a phone's line, roughly
    assert "acct <1> & its wallets" in " ".join(lines)  # the warning, wrapped, whole


async def test_flood_control_429_waits_retry_after_from_the_body(
    tmp_path: Path,
) -> None:
    bot = FakeBotApi(flood=1, retry_after=1)
    await bot.start()
    try:
        target = WebhookTarget.from_settings(telegram(bot.base), env={"HM_TG_TOKEN": TOKEN})
        ledger = await deliver_all(target, tmp_path, [fresh(sample_alert(2))])
    finally:
        await bot.stop()
    assert ledger.alerts.dead_letters() == []
    ledger.close()
    assert len(bot.requests) == 2 and len(bot.delivered) == 1
    waited = bot.requests[1][2] - bot.requests[0][2]
    assert waited >= 1.0  # parameters.retry_after honoured (backoff alone: ~0.05 s)


async def test_a_wrong_token_is_dead_lettered_and_never_shown(
    bot: FakeBotApi, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    caplog.set_level(logging.DEBUG)
    target = WebhookTarget.from_settings(telegram(bot.base), env={"HM_TG_TOKEN": wrong})
    assert wrong not in repr(target) and wrong not in redact_url(target.url)
    ledger = await deliver_all(target, tmp_path, [fresh(sample_alert(3))])
    (letter,) = ledger.alerts.dead_letters("phone")
    ledger.close()
    assert "HTTP 401" in letter.last_error and letter.attempts == 1  # rejected, not retried
    assert wrong not in letter.last_error
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]  # not the fake's log
    assert ours and all(wrong not in r.getMessage() and wrong not in str(r.__dict__) for r in ours)
    assert [token for token, _, _ in bot.requests] == [wrong]


def test_telegram_settings_name_what_is_missing_and_never_echo_the_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set chat_id"):
        telegram("https://api.telegram.org", chat_id="")
    with pytest.raises(ValueError, match="exactly one of bot_token_env and bot_token_file"):
        telegram("", token_env="")
    with pytest.raises(ValueError, match="the bot token authenticates"):
        telegram("", secret_env="X")
    with pytest.raises(ConfigError, match=r"HM_TG_TOKEN .*not set"):
        WebhookTarget.from_settings(telegram(""), env={})
    with pytest.raises(ConfigError, match=r"does not hold a bot token") as caught:
        WebhookTarget.from_settings(telegram(""), env={"HM_TG_TOKEN": "oops-not-a-token"})
    assert "oops" not in str(caught.value)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    entry = telegram("", token_env="", bot_token_file=str(token_file))
    target = WebhookTarget.from_settings(entry, env={})
    assert target.url == f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    assert redact_url(target.url) == "https://api.telegram.org/…"
    assert html.escape("<&>", quote=False) == "&lt;&amp;&gt;"


async def test_a_dead_letter_is_redelivered_once_the_token_is_fixed(
    bot: FakeBotApi, tmp_path: Path
) -> None:
    """The same dead-letter path as every subscription: a wrong token parks the alert;
    `alerts redeliver` with the subscription as configured now sends it."""
    from monitor.alerts.redelivery import redeliver

    wrong = "987654321:ZZZdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    entry = telegram(bot.base)
    ledger = await deliver_all(
        WebhookTarget.from_settings(entry, env={"HM_TG_TOKEN": wrong}),
        tmp_path,
        [fresh(sample_alert(4))],
    )
    try:
        assert len(ledger.alerts.dead_letters("phone")) == 1
        fixed = WebhookTarget.from_settings(entry, env={"HM_TG_TOKEN": TOKEN})
        report = await redeliver(ledger.alerts, {"phone": fixed})
        assert (report.delivered, report.remaining) == (1, 0)
        assert ledger.alerts.dead_letters() == []
    finally:
        ledger.close()
    (body,) = bot.delivered
    assert sample_alert(4).alert_id in body["text"]


def test_a_wash_warning_reads_as_a_buy_not_a_sale() -> None:
    from monitor.alerts.payloads import telegram_text

    warning = fresh(sample_alert(5), kind="wash_warning", loss_usd="400.00")
    lines = shown(telegram_text(warning)).shown.splitlines()
    assert lines[0] == "Wash-sale warning BTC"
    assert "Bought 1.5 @ $100" in lines and "Loss at risk $400.00" in lines
    assert not any(line.startswith(("Sell ", "Net benefit")) for line in lines)
