"""The one root settings model: TOML file + `HM_` environment overrides, validated, frozen.

Environment overrides use `HM_<SECTION>__<KEY>`, e.g. `HM_KAFKA__BOOTSTRAP_SERVERS=k:9092`
or `HM_HARVEST__MIN_LOSS_USD=50`; values are read as TOML values when they parse as
one (numbers, booleans, arrays) and as plain strings otherwise. Unknown keys and wrong
types stop start-up with a message naming the key and where it came from.
`config/monitor.example.toml` documents every setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.prices.board import PriceRules
from monitor.tax.packs import load_pack
from streams.bus.interface import BusConfig

ENV_PREFIX = "HM_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortfolioSettings(_Section):
    path: str = "config/portfolio.example.csv"


NATIVE_VENUES = ("binance", "coinbase", "kraken")


class FeedSettings(_Section):
    """One `[[feeds]]` entry: a venue connection (see monitor/feeds.py for derivation)."""

    venue: str = "binance"  # binance | coinbase | kraken (native), or a ccxt exchange id
    kind: Literal["native", "ccxt"] = "native"
    url: str = ""  # empty: the venue's public endpoint
    symbols: list[str] = Field(default_factory=list)  # empty: derived from the portfolio
    quotes: list[str] = Field(default_factory=lambda: ["USDT"])  # for derived symbols
    channel: str = ""  # empty: the venue's default channel
    exchange_id: str = ""  # kind "ccxt": the ccxt exchange id; empty: `venue`

    @field_validator("quotes")
    @classmethod
    def _quotes_upper(cls, value: list[str]) -> list[str]:
        if not value or not all(q.strip().isalnum() for q in value):
            raise ValueError("quotes must be a non-empty list of currency codes, e.g. ['USD']")
        return [q.strip().upper() for q in value]

    @model_validator(mode="after")
    def _venue_known(self) -> FeedSettings:
        if self.kind == "native" and self.venue not in NATIVE_VENUES:
            raise ValueError(
                f"venue {self.venue!r} has no native feed ({', '.join(NATIVE_VENUES)}); "
                'for another exchange set kind = "ccxt" and venue = its ccxt id'
            )
        if not self.venue or not self.venue.replace("_", "").isalnum() or not self.venue.islower():
            raise ValueError(f"venue {self.venue!r} must be a lower-case id, e.g. 'okx'")
        if self.exchange_id and self.kind != "ccxt":
            raise ValueError('exchange_id is for kind = "ccxt" feeds only')
        return self

    @field_validator("symbols")
    @classmethod
    def _symbols_unified(cls, value: list[str]) -> list[str]:
        for symbol in value:
            base, sep, quote = symbol.partition("/")
            if not sep or not base or not quote:
                raise ValueError(f"symbol {symbol!r} must be BASE/QUOTE, e.g. BTC/USDT")
        return [s.upper() for s in value]


class KafkaSettings(_Section):
    bootstrap_servers: str = ""  # empty: the embedded in-process bus
    ticks_topic: str = "hm.ticks"
    alerts_topic: str = "hm.alerts"
    group_id: str = "hm-detect"
    client_id: str = "harvest-monitor"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    linger_ms: int = Field(default=5, ge=0)
    max_batch_bytes: int = Field(default=1_048_576, ge=1024)
    compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "none"
    enable_idempotence: bool = False
    acks: Literal["0", "1", "all"] = "1"
    fetch_max_records: int = Field(default=5_000, ge=1)
    fetch_max_wait_ms: int = Field(default=500, ge=0)
    session_timeout_ms: int = Field(default=10_000, ge=100)
    heartbeat_interval_ms: int = Field(default=3_000, ge=10)

    def bus_config(self) -> BusConfig:
        return BusConfig(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            linger_ms=self.linger_ms,
            max_batch_bytes=self.max_batch_bytes,
            compression=None if self.compression == "none" else self.compression,
            enable_idempotence=self.enable_idempotence,
            acks=self.acks,
            fetch_max_records=self.fetch_max_records,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
        )


class TaxSettings(_Section):
    """`[tax]`: the rule pack, the rates and the value of a loss (docs/tax.md)."""

    jurisdiction: str = Field(default="us", pattern=r"^[a-z][a-z0-9_-]*$")  # a rule pack name
    packs_dir: str = ""  # empty: this installation's config/jurisdictions
    short_term_rate: float = Field(default=0.37, ge=0, le=1)
    long_term_rate: float = Field(default=0.20, ge=0, le=1)
    value_model: Literal["flat", "ytd"] = "flat"
    ordinary_income_rate: float = Field(default=0.37, ge=0, le=1)
    filing_status: Literal["single", "married_joint", "married_separate", "head_of_household"] = (
        "single"
    )
    ytd_short_term_gain_usd: Decimal = Decimal(0)  # net, realized this tax year; < 0: net loss
    ytd_long_term_gain_usd: Decimal = Decimal(0)
    carryforward_short_usd: Decimal = Field(default=Decimal(0), ge=0)
    carryforward_long_usd: Decimal = Field(default=Decimal(0), ge=0)
    carryforward_value: float = Field(default=0.5, ge=0, le=1)
    # Overrides of the pack's numbers (None: the pack's value).
    wash_sale_days: int | None = Field(default=None, ge=0, le=366)
    inclusion_rate: float | None = Field(default=None, ge=0, le=1)
    cgt_discount: float | None = Field(default=None, ge=0, le=1)
    annual_exemption: Decimal | None = Field(default=None, ge=0)
    rebuy_wait_days: int | None = Field(default=None, ge=0, le=366)

    @model_validator(mode="after")
    def _pack_exists(self) -> TaxSettings:
        try:  # the pack's own errors name its file and key
            load_pack(self.jurisdiction, self.packs_dir)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class ThresholdStep(_Section):
    """From `starts` (MM-DD) to the next step, these thresholds replace [harvest]'s."""

    starts: str = Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    min_loss_usd: float | None = Field(default=None, ge=0)
    min_loss_pct: float | None = Field(default=None, ge=0, lt=1)
    min_net_benefit_usd: float | None = Field(default=None, ge=0)


class HarvestSettings(_Section):
    min_loss_usd: float = Field(default=100.0, ge=0)
    min_loss_pct: float = Field(default=0.05, ge=0, lt=1)
    min_net_benefit_usd: float = Field(default=25.0, ge=0)
    fee_rate: float = Field(default=0.001, ge=0, lt=0.5)
    slippage_bps: float = Field(default=5.0, ge=0, lt=5000)
    rearm_pct: float = Field(default=0.02, ge=0)
    cooldown_s: float = Field(default=3600.0, ge=0)
    lot_selection: Literal["max_loss", "hifo", "fifo"] = "max_loss"
    max_sell_usd: Decimal = Field(default=Decimal(0), ge=0)  # 0: no cap
    step_size: Decimal = Field(default=Decimal(0), ge=0)  # 0: any quantity
    step_sizes: dict[str, Decimal] = Field(default_factory=dict)  # per asset
    min_notional_usd: Decimal = Field(default=Decimal(0), ge=0)
    rebuy: Literal["same", "replacement", "none"] = "same"
    rebuy_delay_days: int = Field(default=0, ge=0, le=366)
    replacements: dict[str, str] = Field(default_factory=dict)  # asset -> replacement asset
    deadline_days: int = Field(default=0, ge=0, le=366)  # 0: no deadline alerts
    schedule: list[ThresholdStep] = Field(default_factory=list)

    @field_validator("step_sizes", "replacements")
    @classmethod
    def _assets_upper(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {
            k.strip().upper(): (v.strip().upper() if isinstance(v, str) else v)
            for k, v in value.items()
        }

    @field_validator("schedule")
    @classmethod
    def _schedule_sorted(cls, value: list[ThresholdStep]) -> list[ThresholdStep]:
        starts = [step.starts for step in value]
        if starts != sorted(set(starts)):
            raise ValueError("schedule steps must have distinct `starts`, in calendar order")
        return value

    @property
    def legs(self) -> int:
        """Trades per harvest: the sale, plus the rebuy unless rebuy = "none"."""
        return 1 if self.rebuy == "none" else 2

    @property
    def round_trip_cost_rate(self) -> float:
        """c = 2 * (fee_rate + slippage_bps / 10000): both legs of a sell and rebuy."""
        return 2.0 * (self.fee_rate + self.slippage_bps / 10_000.0)

    @property
    def cost_rate(self) -> float:
        """Cost rate of a harvest: per-leg fee + slippage times `legs`."""
        return self.legs * (self.fee_rate + self.slippage_bps / 10_000.0)


class PriceSettings(_Section):
    """`[prices]`: quote conversion and the cross-venue guards (monitor/prices)."""

    usd_quotes: list[str] = Field(default_factory=lambda: ["USD"])  # taken at face value
    pegs: dict[str, float] = Field(default_factory=lambda: {"USDT": 1.0, "USDC": 1.0})
    depeg_pct: float = Field(default=0.005, gt=0, lt=1)  # alarm beyond this fraction of peg
    max_age_s: float = Field(default=30.0, gt=0)  # older venue prices are stale, ignored
    outlier_pct: float = Field(default=0.02, gt=0, lt=1)  # from the other venues' median
    confirm_ms: int = Field(default=0, ge=0)  # a crossing must last this long (0: at once)
    venue_stale_s: float = Field(default=60.0, gt=0)  # no tick this long: venue reported

    @field_validator("usd_quotes")
    @classmethod
    def _usd_upper(cls, value: list[str]) -> list[str]:
        return [q.strip().upper() for q in value]

    @field_validator("pegs")
    @classmethod
    def _pegs_positive(cls, value: dict[str, float]) -> dict[str, float]:
        for quote, peg in value.items():
            if not peg > 0:
                raise ValueError(f"peg of {quote} must be a positive USD price, got {peg}")
        return {q.strip().upper(): float(p) for q, p in value.items()}

    @model_validator(mode="after")
    def _quotes_disjoint(self) -> PriceSettings:
        both = sorted(set(self.usd_quotes) & set(self.pegs))
        if both:
            raise ValueError(
                f"{', '.join(both)} in both usd_quotes (face value) and pegs (converted): "
                "keep each quote in one of them"
            )
        return self

    def rules(self) -> PriceRules:
        """The price board's rules."""
        return PriceRules(
            usd_quotes=tuple(self.usd_quotes),
            pegs=tuple(self.pegs.items()),
            depeg_pct=self.depeg_pct,
            max_age_s=self.max_age_s,
            outlier_pct=self.outlier_pct,
            confirm_ms=self.confirm_ms,
        )


class AlertSettings(_Section):
    stdout: bool = True  # JSON lines on standard output
    file: str = ""  # also append JSON lines to this file
    kafka: bool = True  # publish to [kafka] alerts_topic when Kafka is configured


class AlertFilterSettings(_Section):
    accounts: list[str] = Field(default_factory=list)  # empty: every account
    assets: list[str] = Field(default_factory=list)  # empty: every asset
    min_net_benefit_usd: float = Field(default=0.0, ge=0)
    kinds: list[str] = Field(default_factory=list)  # harvest, deadline, wash_warning; empty: all


class WebhookSettings(_Section):
    """One `[[webhooks]]` subscription (docs/webhooks.md); secrets come from env or a file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    url: str = ""  # or url_env, for URLs that are themselves secrets (Slack, Discord)
    url_env: str = ""
    format: Literal["json", "slack", "discord"] = "json"
    secret_env: str = ""  # HMAC key: the name of an environment variable ...
    secret_file: str = ""  # ... or a file holding it
    filter: AlertFilterSettings = AlertFilterSettings()
    timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=300.0, ge=0)
    queue_size: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _sources(self) -> WebhookSettings:
        if bool(self.url) == bool(self.url_env):
            raise ValueError(f"webhook {self.name!r}: set exactly one of url and url_env")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.name!r}: url must start with http:// or https://")
        if self.secret_env and self.secret_file:
            raise ValueError(f"webhook {self.name!r}: set secret_env or secret_file, not both")
        if self.format == "json" and not (self.secret_env or self.secret_file):
            raise ValueError(f"webhook {self.name!r}: json webhooks are signed: set secret_env")
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


class MetricsSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: no HTTP server


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON


class SimulatorSettings(_Section):
    seed: int = 7
    tick_interval_ms: float = Field(default=50.0, gt=0)  # per symbol
    volatility_scale: float = Field(default=1.0, gt=0)  # multiplies each asset's volatility
    seconds_per_tick: float = Field(default=60.0, gt=0)  # simulated market time per tick


class Settings(_Section):
    """The root of all configuration (see config/monitor.example.toml)."""

    portfolio: PortfolioSettings = PortfolioSettings()
    feeds: list[FeedSettings] = Field(default_factory=lambda: default_feeds())
    kafka: KafkaSettings = KafkaSettings()
    tax: TaxSettings = TaxSettings()
    harvest: HarvestSettings = HarvestSettings()
    prices: PriceSettings = PriceSettings()
    alerts: AlertSettings = AlertSettings()
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    ledger: LedgerSettings = LedgerSettings()
    execution: ExecutionSettings = ExecutionSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()
    simulator: SimulatorSettings = SimulatorSettings()

    @field_validator("feeds")
    @classmethod
    def _venues_distinct(cls, value: list[FeedSettings]) -> list[FeedSettings]:
        venues = [f.venue for f in value]
        twice = sorted({v for v in venues if venues.count(v) > 1})
        if twice:
            raise ValueError(f"venue {', '.join(twice)} has more than one [[feeds]] entry")
        return value


def default_feeds() -> list[FeedSettings]:
    """Binance (USDT markets), Coinbase and Kraken (USD markets) on their public endpoints."""
    return [
        FeedSettings(venue="binance", quotes=["USDT"]),
        FeedSettings(venue="coinbase", quotes=["USD"]),
        FeedSettings(venue="kraken", quotes=["USD"]),
    ]


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read `path` (TOML, optional), apply `HM_` environment overrides, then `overrides`.

    Raises ConfigError naming the file and the dotted key for every problem found.
    """
    source = str(path) if path is not None else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{file}: configuration file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    env_used = _apply_env(data, os.environ if env is None else env)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted.split("."), value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, env_used)) from exc


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    used: dict[str, str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__")]
        _set_dotted(data, keys, _env_value(raw))
        used[".".join(keys)] = name
    return used


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set_dotted(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(keys)}: {key} is not a table")
        node = child
    node[keys[-1]] = value


def _describe(exc: ValidationError, source: str, env_used: Mapping[str, str]) -> str:
    lines = [f"{source}: invalid configuration ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        origin = env_used.get(dotted)
        where = f" (from environment variable {origin})" if origin else ""
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check its spelling against config/monitor.example.toml"
        else:
            msg = err["msg"]
        lines.append(f"  {dotted}{where}: {msg} (got {err.get('input')!r})")
    return "\n".join(lines)
