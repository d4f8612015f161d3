"""Limits every order passes before it is sent: the kill switch and notional caps."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from monitor.settings import ExecutionSettings

OFF_VALUES = frozenset({"", "0", "false", "no", "off"})


class Guardrails:
    """Checked before each order; a refusal is a reason string ('' means go)."""

    def __init__(self, settings: ExecutionSettings, env: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._env = os.environ if env is None else env

    def kill_switch(self) -> str:
        """Why trading is halted by the operator ('' when it is not)."""
        s = self._settings
        if s.kill_switch_file and Path(s.kill_switch_file).exists():
            return f"kill switch: {s.kill_switch_file} exists"
        value = self._env.get(s.kill_switch_env, "") if s.kill_switch_env else ""
        if value.strip().lower() not in OFF_VALUES:
            return f"kill switch: {s.kill_switch_env} is set"
        return ""

    def harvest_limit(self, notional_usd: Decimal) -> str:
        cap = self._settings.max_harvest_usd
        if cap and notional_usd > cap:
            return f"notional {notional_usd:.2f} USD is over max_harvest_usd {cap}"
        return ""

    def daily_limit(self, notional_usd: Decimal, sold_today_usd: Decimal, day: datetime) -> str:
        cap = self._settings.max_daily_usd
        if cap and sold_today_usd + notional_usd > cap:
            return (
                f"notional {notional_usd:.2f} USD would take {day:%Y-%m-%d} to "
                f"{sold_today_usd + notional_usd:.2f}, over max_daily_usd {cap}"
            )
        return ""
