"""Limits every order passes before it is sent: the kill switch, notional caps, and the
price checks (the alert's price rests on enough venues; the venue's own current price is
near it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from monitor.settings import ExecutionSettings, Settings

OFF_VALUES = frozenset({"", "0", "false", "no", "off"})


def min_venues(settings: Settings) -> int:
    """`[execution] min_venues`, or when 0: 2 with more than one venue in `[[feeds]]`, else 1."""
    if settings.execution.min_venues:
        return settings.execution.min_venues
    return 2 if len({f.venue for f in settings.feeds}) > 1 else 1


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

    def price_support(self, venues: int, confirmed_by: str, needed: int) -> str:
        """Why a harvest's price rests on too few venues to trade ('' when it does not)."""
        if venues < needed:
            how = f", confirmed by {confirmed_by}" if confirmed_by else ""
            return f"price rests on {venues} venue(s){how}; [execution] min_venues is {needed}"
        return ""

    def slippage(self, venue: str, current_usd: Decimal | None, alert_usd: Decimal) -> str:
        """Why the venue's own current price forbids the sale ('' when it is near the alert's)."""
        if current_usd is None:
            return f"no current price from {venue} to check the alert price against"
        limit = Decimal(repr(self._settings.max_slippage_pct))
        off = abs(current_usd - alert_usd) / alert_usd
        if off > limit:
            return (
                f"{venue} price {_plain(current_usd)} USD is {off * 100:.2f}% from the alert "
                f"price {_plain(alert_usd)} (max_slippage_pct {limit})"
            )
        return ""


def _plain(value: Decimal) -> str:
    """A price for a message: at most 8 significant digits, no exponent, no trailing zeros."""
    rounded = Decimal(f"{value:.8g}")
    return format(rounded.normalize(), "f")
