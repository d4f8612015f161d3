"""Jurisdiction rule packs: `monitor/tax/jurisdictions/<name>.toml` (package data), data only.

A pack says how a country treats a crypto disposal: whether holding period splits gains
into short and long term, how gains and losses net (one of the methods in
`monitor.tax.netting`), how cost basis is identified (specific lots, an average-cost
pool, or first in first out), the window around a sale in which buying the same asset
back denies the loss, and the numbers (inclusion rate, discount, exemption, caps).
Adding a country is adding a file; docs/tax.md describes every key.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.errors import ConfigError

PACKS_DIR = Path(__file__).resolve().parent / "jurisdictions"  # shipped in the package


class RulePack(BaseModel):
    """One jurisdiction's rules, as read from its TOML file (immutable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    sources: list[str] = Field(min_length=1)
    tax_year_starts: str = "01-01"  # MM-DD
    tax_year_named_by: Literal["start", "end"] = "start"  # the calendar year in the name
    holding_period: Literal["one_year", "none"]
    netting: Literal["us", "pooled", "discount", "short_only"]
    basis: Literal["specific", "pool", "fifo"]
    long_term_exempt: bool = False
    window_days: int = Field(ge=0, le=366)
    window_before: bool
    window_held_at_end: bool = False
    same_day_matching: bool = False
    on_disallowed: Literal["report", "exclude"] = "report"
    rebuy_wait_days: int = Field(default=0, ge=0, le=366)
    rebuy_warning: str = ""  # why the same asset is not bought back sooner (plan warnings)
    inclusion_rate: Decimal = Field(ge=0, le=1)
    long_term_discount: Decimal = Field(default=Decimal(0), ge=0, le=1)
    exemption: Literal["none", "allowance", "threshold"] = "none"
    annual_exemption: Decimal = Field(default=Decimal(0), ge=0)
    ordinary_income_cap: Decimal = Field(default=Decimal(0), ge=0)
    ordinary_income_cap_mfs: Decimal = Field(default=Decimal(0), ge=0)

    @field_validator("tax_year_starts")
    @classmethod
    def _month_day(cls, value: str) -> str:
        month_day(value)
        return value


def month_day(text: str) -> tuple[int, int]:
    """`MM-DD` -> (month, day); raises ValueError naming the expected form."""
    try:
        month, day = (int(part) for part in text.split("-"))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise ValueError
    except ValueError:
        raise ValueError(f"{text!r} must be MM-DD, e.g. 04-06") from None
    return month, day


def pack_path(name: str, packs_dir: str | Path = "") -> Path:
    """Where the pack `name` lives (`packs_dir` empty: this installation's packs)."""
    return Path(packs_dir or PACKS_DIR) / f"{name}.toml"


def available_packs(packs_dir: str | Path = "") -> list[str]:
    """Names of the packs in `packs_dir`."""
    return sorted(p.stem for p in Path(packs_dir or PACKS_DIR).glob("*.toml"))


def load_pack(name: str, packs_dir: str | Path = "") -> RulePack:
    """Read and validate one pack; ConfigError names the file and the key."""
    path = pack_path(name, packs_dir)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(available_packs(packs_dir)) or "none"
        raise ConfigError(
            f"{path}: no rule pack {name!r} ([tax] jurisdiction); available: {known}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        pack = RulePack.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: "
            + ("unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors()
        )
        raise ConfigError(f"{path}: invalid rule pack: {problems}") from exc
    if pack.name != name:
        raise ConfigError(f"{path}: name: {pack.name!r} must match the file name {name!r}")
    return pack
