"""The price board: every venue's latest USD price per asset, and one consensus price.

For each tick: convert to USD (`QuoteRates`), record it as the venue's latest price of
the asset, drop venues whose price is older than `max_age_s` (stale), judge the tick
against the other fresh venues (`consensus`), and give detection the median of the
venues that agree, with how many they are, and the debounced price (`ConfirmWindow`).

Time is event time: a venue's price is stale when it is more than `max_age_s` older
than the newest tick of the same asset from any venue (the asset's watermark), so
replays are deterministic and one asset's lag on the bus does not make another's
venues look stale. A tick stamped further in the future than `max_age_s` beyond its own
receive time would drag the watermark ahead and is rejected (`future_ts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from monitor.prices import consensus
from monitor.prices.confirm import ConfirmWindow
from monitor.prices.quotes import QuoteRates
from streams.ticks import Tick

__all__ = ["AssetPrice", "PriceBoard", "PriceRules", "VenuePrice"]

PRICE_REJECTED = Counter(
    "hm_price_rejected_total",
    "Ticks the price board did not use, by venue and reason (unsupported_quote, bad_price, "
    "future_ts, stale, outlier).",
    ["venue", "reason"],
)


@dataclass(frozen=True, slots=True)
class PriceRules:
    """How ticks become one price per asset (built from `[prices]`)."""

    usd_quotes: tuple[str, ...] = ("USD",)
    pegs: tuple[tuple[str, float], ...] = (("USDT", 1.0), ("USDC", 1.0))
    depeg_pct: float = 0.005
    max_age_s: float = 30.0
    outlier_pct: float = 0.02
    confirm_ms: int = 0

    @property
    def max_age_ms(self) -> int:
        return int(self.max_age_s * 1000)


@dataclass(frozen=True, slots=True)
class AssetPrice:
    """The price detection uses for an asset, and where it came from.

    `usd` is the consensus (median of the agreeing fresh venues) after this tick;
    `venues` how many venues it rests on; `confirmed` the price the crossing check uses:
    the highest consensus price over the last `confirm_ms` (equal to `usd` when
    confirm_ms is 0), or None while the window is not yet covered.
    """

    asset: str
    usd: float
    venue: str
    symbol: str
    ts_ms: int
    venues: int = 1
    confirmed: float | None = None


@dataclass(slots=True)
class VenuePrice:
    """One venue's latest price of one asset."""

    usd: float
    ts_ms: int
    recv_ns: int
    symbol: str
    outlier: bool = False  # rejected when it arrived (still a reference for the others)


@dataclass(slots=True)
class _Asset:
    venues: dict[str, VenuePrice] = field(default_factory=dict)
    watermark: int = 0  # newest tick time of the asset, ms


class PriceBoard:
    """Turns ticks into consensus USD prices per asset; says why a tick is not used."""

    def __init__(self, rules: PriceRules | None = None) -> None:
        self.rules = rules = rules or PriceRules()
        self.rates = QuoteRates(
            rules.usd_quotes,
            dict(rules.pegs),
            depeg_pct=rules.depeg_pct,
            max_age_ms=rules.max_age_ms,
        )
        self.confirm = ConfirmWindow(rules.confirm_ms, max_gap_ms=rules.max_age_ms)
        self.latest: dict[str, AssetPrice] = {}  # last accepted price per asset
        self.rejected: dict[tuple[str, str], int] = {}  # (venue, reason) -> count
        self.venue_last_recv_ns: dict[str, int] = {}  # any tick, used or not
        self._assets: dict[str, _Asset] = {}

    def update(self, tick: Tick) -> AssetPrice | str:
        """The asset's new price, or the reason the tick is not used."""
        if tick.recv_ns > self.venue_last_recv_ns.get(tick.venue, 0):
            self.venue_last_recv_ns[tick.venue] = tick.recv_ns
        rules = self.rules
        factor = self.rates.factor(tick.quote, tick.ts_ms)
        if factor is None:
            return self._reject(tick, "unsupported_quote")
        if not math.isfinite(tick.price) or tick.price <= 0:
            return self._reject(tick, "bad_price")
        if tick.ts_ms - tick.recv_ns // 1_000_000 > rules.max_age_ms:
            return self._reject(tick, "future_ts")
        state = self._assets.get(tick.base)
        if state is None:
            state = self._assets[tick.base] = _Asset()
        if tick.ts_ms > state.watermark:
            state.watermark = tick.ts_ms
        now = state.watermark
        if now - tick.ts_ms > rules.max_age_ms:
            return self._reject(tick, "stale")
        usd = tick.price * factor
        # One price per (asset, venue): a venue's markets of one asset (BTC/USD, BTC/USDT)
        # share it, the latest tick wins.
        mine = state.venues[tick.venue] = VenuePrice(usd, tick.ts_ms, tick.recv_ns, tick.symbol)
        names, prices = self._fresh(state, now)
        i = names.index(tick.venue)
        mine.outlier = consensus.deviates(
            prices[i], consensus.reference(prices, i), rules.outlier_pct
        )
        if mine.outlier:
            return self._reject(tick, "outlier")
        agree = consensus.agreeing(prices, rules.outlier_pct)
        usd_now = consensus.median([prices[j] for j in agree])
        confirmed = self.confirm.update(tick.base, now, usd_now)
        price = AssetPrice(
            tick.base, usd_now, tick.venue, tick.symbol, tick.ts_ms, len(agree), confirmed
        )
        self.latest[tick.base] = price
        if self.rates.is_rate(tick.base, tick.quote):
            self.rates.observe(tick.base, usd_now, now)
        return price

    def _fresh(self, state: _Asset, now: int) -> tuple[list[str], list[float]]:
        horizon = now - self.rules.max_age_ms
        names = [v for v, p in state.venues.items() if p.ts_ms >= horizon]
        return names, [state.venues[v].usd for v in names]

    def _reject(self, tick: Tick, reason: str) -> str:
        key = (tick.venue, reason)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        PRICE_REJECTED.labels(tick.venue, reason).inc()
        return reason

    # Health (wall clock) -------------------------------------------------------------------

    def venues_of(self, asset: str) -> Mapping[str, VenuePrice]:
        """Each venue's latest price of `asset` (empty when never priced)."""
        state = self._assets.get(asset)
        return state.venues if state is not None else {}

    def without_fresh_venue(self, now_ns: int, assets: Iterable[str] = ()) -> list[str]:
        """Assets (seen, or listed in `assets`) with no venue tick received in `max_age_s`."""
        horizon = now_ns - int(self.rules.max_age_s * 1e9)
        names = set(self._assets) | set(assets)
        return sorted(
            a for a in names if not any(p.recv_ns >= horizon for p in self.venues_of(a).values())
        )

    def snapshot(self, now_ns: int) -> dict[str, Any]:
        """Per asset: consensus price, venue count, and each venue's price and age."""
        out: dict[str, Any] = {}
        for asset, state in sorted(self._assets.items()):
            last = self.latest.get(asset)
            out[asset] = {
                "usd": last.usd if last else None,
                "venues": last.venues if last else 0,
                "by_venue": {
                    v: {
                        "usd": p.usd,
                        "age_s": round(max(0.0, (now_ns - p.recv_ns) / 1e9), 3),
                        "outlier": p.outlier,
                    }
                    for v, p in sorted(state.venues.items())
                },
            }
        return out
