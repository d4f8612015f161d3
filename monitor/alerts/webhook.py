"""Webhook subscriptions: signed POSTs, retried with backoff, dead-lettered after the last try.

This module resolves a `[[webhooks]]` entry into a `WebhookTarget` and delivers one alert
to it (`deliver`): retries on connection errors, timeouts, 5xx, 408/425/429, honouring
`Retry-After`; a 4xx other than those is a rejection, not retried. Which alerts a
subscription gets, in what order, and what survives a restart is `WebhookSink`'s job
(monitor/alerts/outbox.py: the ledger is the outbox); `harvest-monitor alerts redeliver`
sends dead letters again (monitor/alerts/redelivery.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import Counter, Gauge, Histogram

from monitor import __version__
from monitor.alerts.filter import AlertFilter
from monitor.alerts.payloads import Format, webhook_body
from monitor.alerts.retry import RetryPolicy, is_retryable, parse_retry_after
from monitor.alerts.schema import SCHEMA, Alert
from monitor.alerts.signing import ID_HEADER, sign_headers, signing_key
from monitor.errors import ConfigError
from monitor.settings import WebhookSettings

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "hm_webhook_deliveries_total",
    "Webhook deliveries by final result (delivered, dead_lettered, redelivered).",
    ["subscription", "result"],
)
ATTEMPTS = Counter(
    "hm_webhook_attempts_total",
    "Webhook HTTP attempts by outcome (2xx, 4xx, 429, 5xx, connection_error, timeout).",
    ["subscription", "outcome"],
)
RETRIES = Counter(
    "hm_webhook_retries_total", "Webhook attempts retried after a failure.", ["subscription"]
)
DEAD_LETTERED = Counter(
    "hm_webhook_dead_letters_total",
    "Alerts put in the dead-letter table, by reason (retries_exhausted, rejected, "
    "retry_after_too_long, expired, error).",
    ["subscription", "reason"],
)
QUEUE_DEPTH = Gauge(
    "hm_webhook_queue_depth",
    "A webhook subscription's backlog: alerts recorded after its cursor that are not yet "
    "delivered or dead-lettered (in flight included).",
    ["subscription"],
)
IN_FLIGHT = Gauge(
    "hm_webhook_in_flight",
    "Alerts a webhook subscription is delivering now (at most its concurrency).",
    ["subscription"],
)
DELIVERY_SECONDS = Histogram(
    "hm_webhook_delivery_seconds",
    "From the alert's emitted_at to the receiver's 2xx, retries (and restarts) included.",
    ["subscription"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
USER_AGENT = f"harvest-monitor/{__version__}"
TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
BOT_PATH = re.compile(r"/bot[^/\s]+")  # a Bot API URL's token, scrubbed from any error
MAX_ERROR_CHARS = 200


def redact_url(url: str) -> str:
    """`scheme://host[:port]` only: webhook paths (Slack, Discord) are themselves secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A subscription ready to deliver to: URL and secret resolved (neither is ever shown)."""

    name: str
    url: str = field(repr=False)
    format: Format = "json"
    secret: bytes | None = field(default=None, repr=False)  # the HMAC key (signing_key)
    legacy_headers: bool = False  # also X-HM-Alert-Id, X-HM-Timestamp, X-HM-Signature
    chat_id: str = ""  # telegram: the chat; `url` then holds the bot token (never shown)
    filter: AlertFilter = field(default_factory=AlertFilter)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float = 10.0
    queue_size: int = 1000
    concurrency: int = 4  # alerts in flight at once (1: strictly in order)
    max_age_s: float = 900.0  # older alerts are dead-lettered, not sent; 0: no limit
    stop_grace_s: float = 5.0  # at shutdown, time left to the backlog before it is cut off

    @classmethod
    def from_settings(
        cls, s: WebhookSettings, env: Mapping[str, str] | None = None
    ) -> WebhookTarget:
        """Resolve `url_env` / `secret_env` / `secret_file`; ConfigError names what is missing."""
        environ = os.environ if env is None else env
        if s.format == "telegram":
            return cls._telegram(s, environ)
        url = s.url or environ.get(s.url_env, "")
        if not url:
            raise ConfigError(f"webhook {s.name!r}: environment variable {s.url_env} is not set")
        secret: bytes | None = None
        if s.secret_env:
            value = environ.get(s.secret_env, "")
            if not value:
                raise ConfigError(
                    f"webhook {s.name!r}: environment variable {s.secret_env} (secret_env) "
                    "is not set or empty"
                )
            secret = value.encode()
        elif s.secret_file:
            try:
                secret = Path(s.secret_file).read_bytes().strip()
            except OSError as exc:
                raise ConfigError(
                    f"webhook {s.name!r}: secret_file {s.secret_file}: {exc.strerror}"
                ) from exc
            if not secret:
                raise ConfigError(f"webhook {s.name!r}: secret_file {s.secret_file} is empty")
        if secret is not None:
            try:
                secret = signing_key(secret)
            except ValueError as exc:
                where = s.secret_env or s.secret_file
                raise ConfigError(f"webhook {s.name!r}: the secret in {where}: {exc}") from exc
        return cls(
            name=s.name,
            url=url,
            format=s.format,
            secret=secret,
            legacy_headers=s.legacy_headers,
            **_delivery(s),
        )

    @classmethod
    def _telegram(cls, s: WebhookSettings, environ: Mapping[str, str]) -> WebhookTarget:
        """A Bot API `sendMessage` URL with the token from `bot_token_env`/`bot_token_file`."""
        if s.bot_token_env:
            token = environ.get(s.bot_token_env, "").strip()
            where = f"environment variable {s.bot_token_env}"
        else:
            where = f"bot_token_file {s.bot_token_file}"
            try:
                token = Path(s.bot_token_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigError(f"webhook {s.name!r}: {where}: {reason}") from exc
        if not token:
            raise ConfigError(f"webhook {s.name!r}: {where} (the bot token) is not set or empty")
        if not TELEGRAM_TOKEN.fullmatch(token):
            raise ConfigError(  # never echo what was found: it may be a real token
                f"webhook {s.name!r}: {where} does not hold a bot token "
                "(<digits>:<letters, digits, _ or ->, as @BotFather gives it)"
            )
        base = (s.url or TELEGRAM_API).rstrip("/")
        return cls(
            name=s.name,
            url=f"{base}/bot{token}/sendMessage",
            format="telegram",
            chat_id=s.chat_id.strip(),
            **_delivery(s),
        )


def _delivery(s: WebhookSettings) -> dict[str, Any]:
    """What every format shares: the filter, retries, timeouts, concurrency and age limit."""
    return {
        "filter": AlertFilter.of(
            s.filter.accounts, s.filter.assets, s.filter.min_net_benefit_usd, s.filter.kinds
        ),
        "policy": RetryPolicy(s.max_attempts, s.backoff_initial_s, s.backoff_max_s),
        "timeout_s": s.timeout_s,
        "queue_size": s.queue_size,
        "concurrency": s.concurrency,
        "max_age_s": s.max_age_s,
        "stop_grace_s": s.stop_grace_s,
    }


def webhook_targets(
    settings: Sequence[WebhookSettings], env: Mapping[str, str] | None = None
) -> list[WebhookTarget]:
    """Every `[[webhooks]]` entry resolved; names must be unique (they key dead letters)."""
    seen: set[str] = set()
    for entry in settings:
        if entry.name in seen:
            raise ConfigError(f"webhooks: the name {entry.name!r} is used twice")
        seen.add(entry.name)
    return [WebhookTarget.from_settings(entry, env) for entry in settings]


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to."""

    ok: bool
    retryable: bool
    outcome: str  # the metric label
    error: str = ""
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What delivering one alert came to, after every attempt."""

    ok: bool
    attempts: int
    error: str = ""
    reason: str = ""  # dead-letter reason when not ok


async def post_once(
    session: aiohttp.ClientSession,
    target: WebhookTarget,
    alert: Alert,
    body: bytes,
    attempt: int,
    timeout_s: float | None = None,
) -> Attempt:
    """POST one signed alert, waiting `timeout_s` at most (default the target's); classify
    the result (never raises for network errors)."""
    timeout_s = target.timeout_s if timeout_s is None else timeout_s
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-HM-Schema": SCHEMA,
        "X-HM-Delivery-Attempt": str(attempt),
    }
    if target.legacy_headers:
        headers["X-HM-Alert-Id"] = alert.alert_id
    if target.secret is not None:
        headers.update(
            sign_headers(target.secret, alert.alert_id, body, legacy=target.legacy_headers)
        )
    else:
        headers[ID_HEADER] = alert.alert_id  # the idempotency key, signed or not
    try:
        async with session.post(
            target.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if 200 <= resp.status < 300:
                return Attempt(True, False, "2xx")
            text = (await resp.content.read(512)).decode("utf-8", "replace")
            outcome = "429" if resp.status == 429 else f"{resp.status // 100}xx"
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if retry_after is None and target.format == "telegram":
                retry_after = telegram_retry_after(text)
            return Attempt(
                False,
                is_retryable(resp.status),
                outcome,
                f"HTTP {resp.status}: {BOT_PATH.sub('/bot…', text.strip())[:MAX_ERROR_CHARS]}",
                retry_after,
            )
    except TimeoutError:
        return Attempt(False, True, "timeout", f"no answer within {timeout_s:g}s")
    except aiohttp.ClientError as exc:
        message = str(exc).replace(target.url, redact_url(target.url))
        message = BOT_PATH.sub("/bot…", message)[:MAX_ERROR_CHARS]
        return Attempt(False, True, "connection_error", f"{type(exc).__name__}: {message}")


def telegram_retry_after(text: str) -> float | None:
    """The Bot API's flood-control wait: `parameters.retry_after` of an error response
    (`{"ok": false, "error_code": 429, "parameters": {"retry_after": 35}}`)."""
    try:
        answer = json.loads(text)
        seconds = answer["parameters"]["retry_after"]
    except (ValueError, KeyError, TypeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None


Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
RETRY_LOG_INTERVAL_S = 10.0


class RetryWarnings:
    """Retries logged at WARNING, one line per subscription per interval with a count.

    A receiver that is down fails every attempt of every alert in flight; one line every
    `interval_s` saying how many retries it took since the last line says as much as a
    line per attempt, without flooding the log.
    """

    def __init__(self, interval_s: float = RETRY_LOG_INTERVAL_S, clock: Clock = time.monotonic):
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def retrying(
        self, subscription: str, alert_id: str, attempt: int, error: str, delay: float
    ) -> None:
        """Count a retry; log it when the subscription's last line is `interval_s` old."""
        now = self._clock()
        last = self._last.get(subscription)
        if last is not None and now - last < self._interval_s:
            self._quiet[subscription] = self._quiet.get(subscription, 0) + 1
            return
        self._last[subscription] = now
        log.warning(
            "webhook attempt failed, retrying",
            extra={
                "subscription": subscription,
                "alert_id": alert_id,
                "attempt": attempt,
                "error": error,
                "retry_in_s": round(delay, 3),
                "retries_not_logged": self._quiet.pop(subscription, 0),
            },
        )


RETRY_WARNINGS = RetryWarnings()  # for callers without their own (`alerts redeliver`)


def _expired(attempts: int, max_age_s: float, error: str) -> Delivery:
    last = f"; last error: {error}" if error else ""
    return Delivery(
        False, attempts, f"older than max_age_s {max_age_s:g}s, not sent{last}", "expired"
    )


async def deliver(
    session: aiohttp.ClientSession,
    target: WebhookTarget,
    alert: Alert,
    encoded: bytes,
    *,
    expires_at: float | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
    on_attempt: Callable[[int], None] | None = None,
    warnings: RetryWarnings | None = None,
) -> Delivery:
    """Try until delivered, rejected for good, out of attempts, or past `expires_at`
    (Unix time: an alert that old is worse than none, so an attempt is also cut off
    there); wait between tries. Retries are logged through `warnings`."""
    body = webhook_body(target.format, alert, encoded, target.chat_id)
    policy = target.policy
    result = Attempt(False, True, "none")
    for attempt in range(1, policy.max_attempts + 1):
        if expires_at is not None and clock() >= expires_at:
            return _expired(attempt - 1, target.max_age_s, result.error)
        if on_attempt is not None:
            on_attempt(attempt)
        timeout_s = target.timeout_s
        if expires_at is not None:
            timeout_s = max(0.001, min(timeout_s, expires_at - clock()))
        result = await post_once(session, target, alert, body, attempt, timeout_s)
        ATTEMPTS.labels(target.name, result.outcome).inc()
        if result.ok:
            return Delivery(True, attempt)
        if not result.retryable:
            return Delivery(False, attempt, f"{result.error} (not retried)", "rejected")
        if attempt == policy.max_attempts:
            break
        if result.retry_after_s is not None and result.retry_after_s > policy.max_delay_s:
            return Delivery(
                False,
                attempt,
                f"{result.error}; Retry-After {result.retry_after_s:.0f}s exceeds "
                f"backoff_max_s {policy.max_delay_s:g}s",
                "retry_after_too_long",
            )
        delay = policy.delay(attempt, result.retry_after_s)
        if expires_at is not None and clock() + delay >= expires_at:
            return _expired(attempt, target.max_age_s, result.error)  # no point waiting
        RETRIES.labels(target.name).inc()
        (warnings or RETRY_WARNINGS).retrying(
            target.name, alert.alert_id, attempt, result.error, delay
        )
        await sleep(delay)
    return Delivery(False, policy.max_attempts, result.error, "retries_exhausted")
