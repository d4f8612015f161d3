"""Which alerts a subscriber wants: accounts, assets, kinds and a minimum net benefit.

The same filter serves webhook subscriptions (from settings) and websocket subscribers
(from their `subscribe` message). An empty list means "all"; every given rule must hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from monitor.alerts.schema import Alert


class FilterError(ValueError):
    """A filter could not be read; the message names the field."""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Accounts, assets and alert kinds (empty: any) and the least net benefit in USD."""

    accounts: frozenset[str] = frozenset()
    assets: frozenset[str] = frozenset()
    min_net_benefit_usd: Decimal = Decimal(0)
    kinds: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        accounts: Iterable[str] = (),
        assets: Iterable[str] = (),
        min_net_benefit_usd: Decimal | float | str = 0,
        kinds: Iterable[str] = (),
    ) -> AlertFilter:
        return cls(
            frozenset(accounts),
            frozenset(a.upper() for a in assets),
            Decimal(str(min_net_benefit_usd)),
            frozenset(kinds),
        )

    @classmethod
    def from_json(cls, data: Any) -> AlertFilter:
        """From `{"accounts": [...], "assets": [...], "kinds": [...], "min_net_benefit_usd": n}`."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise FilterError("filter must be a JSON object")
        unknown = set(data) - {"accounts", "assets", "kinds", "min_net_benefit_usd"}
        if unknown:
            raise FilterError(f"filter: unknown field(s) {sorted(unknown)}")
        lists: dict[str, list[str]] = {}
        for name in ("accounts", "assets", "kinds"):
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise FilterError(f"filter.{name} must be a list of strings")
            lists[name] = value
        raw = data.get("min_net_benefit_usd", 0)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise FilterError("filter.min_net_benefit_usd must be a number")
        try:
            minimum = Decimal(str(raw))
        except InvalidOperation as exc:
            raise FilterError("filter.min_net_benefit_usd must be a number") from exc
        if not minimum.is_finite():
            raise FilterError("filter.min_net_benefit_usd must be finite")
        return cls.of(lists["accounts"], lists["assets"], minimum, lists["kinds"])

    def to_json(self) -> dict[str, Any]:
        return {
            "accounts": sorted(self.accounts),
            "assets": sorted(self.assets),
            "kinds": sorted(self.kinds),
            "min_net_benefit_usd": str(self.min_net_benefit_usd),
        }

    def matches(self, alert: Alert) -> bool:
        if self.accounts and alert.account not in self.accounts:
            return False
        if self.assets and alert.asset.upper() not in self.assets:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        return not self.min_net_benefit_usd or (
            Decimal(alert.net_benefit_usd) >= self.min_net_benefit_usd
        )
