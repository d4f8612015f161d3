"""Settings of the tax side: `[tax]` and `[harvest]`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.settings.base import _Section
from monitor.tax.packs import load_pack


class TaxSettings(_Section):
    """`[tax]`: the rule pack, the rates and the value of a loss (docs/tax.md)."""

    jurisdiction: str = Field(default="us", pattern=r"^[a-z][a-z0-9_-]*$")  # a rule pack name
    packs_dir: str = ""  # empty: the packs shipped in the package
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
    remind_after_s: float = Field(default=0.0, ge=0)  # 0: no reminders
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
