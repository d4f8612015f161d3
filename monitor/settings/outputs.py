"""Settings of what comes out: alerts, webhooks, subscriptions, ledger, execution,
metrics, logs, the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from monitor.health import HealthRules
from monitor.settings.base import _Section


class AlertSettings(_Section):
    stdout: bool = True  # JSON lines on standard output
    file: str = ""  # also append JSON lines to this file
    kafka: bool = True  # publish to [kafka] alerts_topic when Kafka is configured


class AlertFilterSettings(_Section):
    accounts: list[str] = Field(default_factory=list)  # empty: every account
    assets: list[str] = Field(default_factory=list)  # empty: every asset
    min_net_benefit_usd: float = Field(default=0.0, ge=0)
    kinds: list[str] = Field(default_factory=list)  # alert kinds (schema.Alert); empty: all


class WebhookSettings(_Section):
    """One `[[webhooks]]` subscription (docs/webhooks.md); secrets come from env or a file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = ""  # or url_env, for URLs that are themselves secrets (Slack, Discord);
    # telegram: the Bot API's base URL (default https://api.telegram.org)
    url_env: str = ""
    format: Literal["json", "slack", "discord", "telegram"] = "json"
    bot_token_env: str = ""  # telegram: the bot token from this environment variable ...
    bot_token_file: str = ""  # ... or this file; never in the settings file
    chat_id: str = ""  # telegram: the chat to post to (a number, or @channelname)
    secret_env: str = ""  # HMAC key: the name of an environment variable ...
    secret_file: str = ""  # ... or a file holding it (whsec_<base64>, Standard Webhooks)
    legacy_headers: bool = False  # also the X-HM-* signature headers of 0.x (one release)
    filter: AlertFilterSettings = AlertFilterSettings()
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=300.0, ge=0)
    queue_size: int = Field(default=1000, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64)  # alerts in flight at once; 1: in order
    max_age_s: float = Field(default=900.0, ge=0)  # older: dead-lettered, not sent; 0: none
    stop_grace_s: float = Field(default=5.0, ge=0)  # shutdown: time left to the backlog

    @model_validator(mode="after")
    def _sources(self) -> WebhookSettings:
        if self.format == "telegram":
            return self._telegram()
        if self.bot_token_env or self.bot_token_file or self.chat_id:
            raise ValueError(
                f"webhook {self.name!r}: bot_token_env, bot_token_file and chat_id are for "
                'format = "telegram"'
            )
        if bool(self.url) == bool(self.url_env):
            raise ValueError(f"webhook {self.name!r}: set exactly one of url and url_env")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.name!r}: url must start with http:// or https://")
        if self.secret_env and self.secret_file:
            raise ValueError(f"webhook {self.name!r}: set secret_env or secret_file, not both")
        if self.format == "json" and not (self.secret_env or self.secret_file):
            raise ValueError(f"webhook {self.name!r}: json webhooks are signed: set secret_env")
        return self

    def _telegram(self) -> WebhookSettings:
        where = f"webhook {self.name!r} (telegram)"
        if bool(self.bot_token_env) == bool(self.bot_token_file):
            raise ValueError(f"{where}: set exactly one of bot_token_env and bot_token_file")
        if not self.chat_id.strip():
            raise ValueError(f"{where}: set chat_id (a chat number, or @channelname)")
        if self.url_env:
            raise ValueError(f"{where}: url is the Bot API base URL; url_env is not used")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{where}: url must start with http:// or https://")
        if self.secret_env or self.secret_file:
            raise ValueError(f"{where}: the bot token authenticates; drop secret_env/secret_file")
        return self


class SubscriptionTokenSettings(_Section):
    name: str  # who holds the token (logs, metrics)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # hex sha256 of the token, never the token


class SubscriptionSettings(_Section):
    """The websocket subscription server (`/v1/alerts`, docs/subscriptions.md)."""

    websocket_port: int = Field(default=0, ge=0, le=65535)  # 0: no server
    host: str = "127.0.0.1"
    tokens: list[SubscriptionTokenSettings] = Field(default_factory=list)
    queue_size: int = Field(default=1000, ge=1)  # alerts queued per client before cut-off
    send_timeout_s: float = Field(default=10.0, gt=0)  # a client this slow is cut off
    subscribe_timeout_s: float = Field(default=10.0, gt=0)  # wait for the filter message

    @model_validator(mode="after")
    def _tokens(self) -> SubscriptionSettings:
        if self.websocket_port and not self.tokens:
            raise ValueError("websocket_port is set but no tokens: nobody could subscribe")
        return self


class LedgerSettings(_Section):
    """`[ledger]`: the durable store of lots, alerts and executions (monitor/ledger)."""

    path: str = "var/ledger.sqlite"  # one SQLite file (WAL); ":memory:" keeps nothing
    lock_lease_s: float = Field(default=30.0, ge=3)  # a writer silent this long is dead


class ExecutionSettings(_Section):
    """`[execution]`: what happens to a harvest alert (monitor/execute, docs/execution.md)."""

    mode: Literal["alert", "paper", "live"] = "alert"
    accounts: list[str] = Field(default_factory=list)  # accounts traded; empty: every account
    venue: str = Field(default="binance", pattern=r"^[a-z][a-z0-9_]*$")  # a ccxt exchange id
    quote: str = Field(default="USDT", pattern=r"^[A-Z0-9]+$")  # orders trade ASSET/quote
    quote_usd: Decimal = Field(default=Decimal(1), gt=0)  # USD value of one unit of quote
    sandbox: bool = False  # the venue's testnet (ccxt set_sandbox_mode)
    api_url: str = ""  # REST base URL override (tests, proxies); empty: the venue's own
    api_key_env: str = "HM_EXCHANGE_API_KEY"  # environment variable holding the API key ...
    api_secret_env: str = "HM_EXCHANGE_API_SECRET"
    api_key_file: str = ""  # ... or files holding them (they win when set)
    api_secret_file: str = ""
    dry_run: bool = True  # live: log the exact orders instead of sending them
    max_harvest_usd: Decimal = Field(default=Decimal(10_000), ge=0)  # per harvest; 0: none
    max_daily_usd: Decimal = Field(default=Decimal(50_000), ge=0)  # per UTC day; 0: none
    kill_switch_file: str = "var/KILL"  # this file existing stops every order
    kill_switch_env: str = "HM_KILL_SWITCH"  # this variable set (non-empty, not 0) too
    order_timeout_s: float = Field(default=30.0, gt=0)  # wait for a market order to settle
    poll_interval_s: float = Field(default=1.0, gt=0)  # between order status checks
    recovery_grace_s: float = Field(default=10.0, ge=0)  # >= the venue's receive window
    max_alert_age_s: float = Field(default=120.0, ge=0)  # older alerts are not traded; 0: any
    min_venues: int = Field(default=0, ge=0)  # agreeing venues a traded price needs; 0: auto
    max_slippage_pct: float = Field(default=0.02, gt=0, lt=1)  # venue price vs alert price


class MetricsSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: no HTTP server


class HealthSettings(_Section):
    """`[health]`: when /healthz turns 503 (monitor/health.py lists the checks)."""

    stall_s: float = Field(default=60.0, gt=0)  # no progress this long fails a check
    max_unpriced_pct: float = Field(default=0.25, ge=0, le=1)  # of the portfolio's assets

    def rules(self) -> HealthRules:
        return HealthRules(stall_s=self.stall_s, max_unpriced_pct=self.max_unpriced_pct)


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON


class SimulatorSettings(_Section):
    seed: int = 7
    tick_interval_ms: float = Field(default=50.0, gt=0)  # per symbol
    volatility_scale: float = Field(default=1.0, gt=0)  # multiplies each asset's volatility
    seconds_per_tick: float = Field(default=60.0, gt=0)  # simulated market time per tick
