"""Signed webhooks as a receiver that follows the Standard Webhooks spec sees them.

Two receivers, each a real aiohttp server on loopback, neither using our signing code:
one written here from the spec's text (spec/standard-webhooks.md, "Signature scheme",
"Webhook headers", "Verifying signatures"), one calling the published `standardwebhooks`
library. Both must accept every delivery and refuse a tampered one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from aiohttp import web

from monitor.alerts.outbox import WebhookSink
from monitor.alerts.retry import RetryPolicy
from monitor.alerts.webhook import WebhookTarget
from monitor.ledger.ledger import Ledger
from monitor.settings import WebhookSettings
from tests.alerting import publish, sample_alert

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def spec_verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """A receiver's check, from the spec's text alone; returns webhook-id or raises.

    - secret: "base64 encoded, prefixed with whsec_"
    - content signed: "{msg_id}.{timestamp}.{payload}", HMAC-SHA256
    - webhook-signature: "a space delimited list of signatures", each "v1," + base64
    - the timestamp within a tolerance of now (5 minutes, as the libraries use)
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        raise ValueError("timestamp outside tolerance")
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for entry in headers["webhook-signature"].split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msg_id
    raise ValueError("no matching signature")


def library_verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """The published verifier (pip install standardwebhooks; a dev dependency: a venv made
    before it was added skips these cases rather than failing to collect the module)."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError as exc:
        raise ValueError(str(exc)) from exc
    return headers["webhook-id"]


Verifier = Callable[[str, Mapping[str, str], bytes], str]


class SpecReceiver:
    """An endpoint that answers 2xx only to requests its verifier accepts."""

    def __init__(self, verifier: Verifier, tamper: bool = False) -> None:
        self.verifier = verifier
        self.tamper = tamper  # verify a body one byte longer than received
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        self.bodies.append(body)
        try:
            msg_id = self.verifier(SECRET, headers, body + (b" " if self.tamper else b""))
        except (ValueError, KeyError) as exc:
            self.refused.append(str(exc))
            return web.Response(status=401, text="bad signature")
        self.accepted.append(msg_id)
        return web.Response(status=204)


def settings_target(url: str, **extra: object) -> WebhookTarget:
    """A subscription as the settings file gives it, the secret from the environment."""
    entry = WebhookSettings.model_validate(
        {"name": "spec", "url": url, "secret_env": "HOOK_SECRET", **extra}
    )
    target = WebhookTarget.from_settings(entry, env={"HOOK_SECRET": SECRET})
    return WebhookTarget(
        name=target.name,
        url=target.url,
        secret=target.secret,
        legacy_headers=target.legacy_headers,
        policy=RetryPolicy(max_attempts=1, initial_delay_s=0.01, max_delay_s=0.1),
        max_age_s=0.0,  # the sample alerts were emitted on 2026-03-01
    )


@pytest.mark.parametrize("verifier", [spec_verify, library_verify], ids=["spec", "library"])
async def test_a_standard_webhooks_receiver_accepts_every_delivery(
    verifier: Verifier, tmp_path: Path
) -> None:
    if verifier is library_verify:
        pytest.importorskip("standardwebhooks")
    receiver = SpecReceiver(verifier)
    await receiver.start()
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    sink = WebhookSink(settings_target(f"http://127.0.0.1:{receiver.port}/hook"), ledger.alerts)
    alerts = [sample_alert(i) for i in range(3)]
    try:
        await sink.start()
        await publish(ledger.alerts, [sink], alerts)
        await sink.drain()
    finally:
        await sink.stop()
        await receiver.stop()
    letters = ledger.alerts.dead_letters()
    ledger.close()
    assert receiver.refused == [] and letters == []
    assert receiver.accepted == [a.alert_id for a in alerts]  # webhook-id is the alert id
    assert not any("x-hm-signature" in h for h in receiver.headers)  # legacy pair is opt-in


@pytest.mark.parametrize("verifier", [spec_verify, library_verify], ids=["spec", "library"])
async def test_a_tampered_body_is_refused_by_a_standard_receiver(
    verifier: Verifier, tmp_path: Path
) -> None:
    if verifier is library_verify:
        pytest.importorskip("standardwebhooks")
    receiver = SpecReceiver(verifier, tamper=True)
    await receiver.start()
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    sink = WebhookSink(settings_target(f"http://127.0.0.1:{receiver.port}/hook"), ledger.alerts)
    try:
        await sink.start()
        await publish(ledger.alerts, [sink], [sample_alert(1)])
        await sink.drain()
    finally:
        await sink.stop()
        await receiver.stop()
    (letter,) = ledger.alerts.dead_letters("spec")  # 401: rejected, not retried
    ledger.close()
    assert receiver.accepted == [] and len(receiver.refused) == 1
    assert "HTTP 401" in letter.last_error


async def test_legacy_headers_are_sent_beside_the_standard_ones_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = SpecReceiver(spec_verify)
    await receiver.start()
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    target = settings_target(f"http://127.0.0.1:{receiver.port}/hook", legacy_headers=True)
    sink = WebhookSink(target, ledger.alerts)
    alert = sample_alert(1)
    try:
        await sink.start()
        await publish(ledger.alerts, [sink], [alert])
        await sink.drain()
    finally:
        await sink.stop()
        await receiver.stop()
        ledger.close()
    (headers,) = receiver.headers
    assert receiver.accepted == [alert.alert_id]
    assert any("deprecated" in r.getMessage() for r in caplog.records)  # said at start
    # The 0.x scheme: hex HMAC-SHA256 of "{timestamp}.{body}" under the same key bytes.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    stamp = headers["x-hm-timestamp"]
    assert stamp == headers["webhook-timestamp"] and headers["x-hm-alert-id"] == alert.alert_id
    (body,) = receiver.bodies
    expected = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256)
    assert headers["x-hm-signature"] == f"v1={expected.hexdigest()}"
