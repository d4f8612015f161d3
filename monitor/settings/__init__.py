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
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from monitor.errors import ConfigError
from monitor.settings.base import _Section
from monitor.settings.market import (
    NATIVE_VENUES,
    FeedSettings,
    KafkaSettings,
    PortfolioSettings,
    PriceSettings,
    default_feeds,
)
from monitor.settings.outputs import (
    AlertFilterSettings,
    AlertSettings,
    ExecutionSettings,
    HealthSettings,
    LedgerSettings,
    LogSettings,
    MetricsSettings,
    SimulatorSettings,
    SubscriptionSettings,
    SubscriptionTokenSettings,
    WebhookSettings,
)
from monitor.settings.taxes import HarvestSettings, TaxSettings, ThresholdStep

__all__ = [
    "NATIVE_VENUES",
    "AlertFilterSettings",
    "AlertSettings",
    "ExecutionSettings",
    "FeedSettings",
    "HarvestSettings",
    "HealthSettings",
    "KafkaSettings",
    "LedgerSettings",
    "LogSettings",
    "MetricsSettings",
    "PortfolioSettings",
    "PriceSettings",
    "Settings",
    "SimulatorSettings",
    "SubscriptionSettings",
    "SubscriptionTokenSettings",
    "TaxSettings",
    "ThresholdStep",
    "WebhookSettings",
    "default_feeds",
    "load_settings",
]

ENV_PREFIX = "HM_"


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
    health: HealthSettings = HealthSettings()
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
