"""The price board: every venue's latest USD price per asset, and one consensus price.

For each tick: convert to USD (`QuoteRates`), record it as the venue's latest price of
the asset, drop venues whose price is older than `max_age_s` (stale), judge the tick
against the other fresh venues (`consensus`), and give detection the median of the
venues that agree, with how many they are and how old the oldest of their prices is;
then the bad-print guard (`PriceGuard`) says whether detection may act on that price
(two venues agree, or one venue's price has persisted), and the debounce
(`ConfirmWindow`) gives the price crossings are checked at. A tick whose price is no
price at all (not positive, subnormal, under `min_usd`, an absurd jump) is rejected.

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

import msgspec
from prometheus_client import Counter

from monitor.prices import consensus
from monitor.prices.confirm import ConfirmWindow
from monitor.prices.guard import ACTED_ON, GuardRules, PriceGuard, Trust
from monitor.prices.quotes import QuoteRates
from streams.ticks import Tick

__all__ = ["AssetPrice", "PriceBoard", "PriceRules", "VenuePrice"]

PRICE_REJECTED = Counter(
    "hm_price_rejected_total",
    "Ticks the price board did not use, by venue and reason (unsupported_quote, bad_price, "
    "subnormal, below_min, absurd_jump, future_ts, stale, outlier).",
    ["venue", "reason"],
)
PRICE_HELD = Counter(
    "hm_price_held_total",
    "Consensus prices detection did not act on until confirmed, by reason (single_venue: "
    "one venue alone for less than [prices] hold_s; jump: moved more than jump_pct within "
    "hold_s on one venue).",
    ["reason"],
)
_HELD = {reason: PRICE_HELD.labels(reason) for reason in ("single_venue", "jump")}


@dataclass(frozen=True, slots=True)
class PriceRules:
    """How ticks become one price per asset (built from `[prices]`)."""

    usd_quotes: tuple[str, ...] = ("USD",)
    pegs: tuple[tuple[str, float], ...] = (("USDT", 1.0), ("USDC", 1.0))
    depeg_pct: float = 0.005
    max_age_s: float = 30.0
    outlier_pct: float = 0.02
    confirm_ms: int = 0
    guard: GuardRules = field(default_factory=GuardRules)

    @property
    def max_age_ms(self) -> int:
        return int(self.max_age_s * 1000)


class AssetPrice(msgspec.Struct, frozen=True):
    """The price detection uses for an asset, and where it came from.

    `usd` is the consensus (median of the agreeing fresh venues) after this tick;
    `venues` how many venues it rests on; `age_ms` how old the oldest of their prices
    is (event time); `trust` whether detection may act on it (`venues`, `persistence`)
    or holds it (`single_venue`, `jump`; see `monitor.prices.guard`); `confirmed` the
    price the crossing check uses: the highest acted-on consensus price over the last
    `confirm_ms` (equal to `usd` when confirm_ms is 0), or None while the price is held
    or the window is not yet covered. One is made per tick: a msgspec struct, ten times
    cheaper to make than a frozen dataclass.
    """

    asset: str
    usd: float
    venue: str
    symbol: str
    ts_ms: int
    venues: int = 1
    confirmed: float | None = None
    age_ms: int = 0
    trust: Trust = "venues"


@dataclass(slots=True)
class VenuePrice:
    """One venue's latest price of one asset (updated in place by each of its ticks)."""

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
        self.guard = PriceGuard(rules.guard)
        self.latest: dict[str, AssetPrice] = {}  # last accepted price per asset
        self.rejected: dict[tuple[str, str], int] = {}  # (venue, reason) -> count
        self.venue_last_recv_ns: dict[str, int] = {}  # any tick, used or not
        self._assets: dict[str, _Asset] = {}
        self._max_age_ms = rules.max_age_ms

    def update(self, tick: Tick) -> AssetPrice | str:
        """The asset's new price, or the reason the tick is not used."""
        # Every tick of every venue comes through here: keep attribute lookups and
        # allocations few (one AssetPrice), and skip consensus with a single venue.
        venue, base, quote = tick.venue, tick.base, tick.quote
        ts_ms, recv_ns, price = tick.ts_ms, tick.recv_ns, tick.price
        if recv_ns > self.venue_last_recv_ns.get(venue, 0):
            self.venue_last_recv_ns[venue] = recv_ns
        max_age_ms, rates, confirm = self._max_age_ms, self.rates, self.confirm
        factor = 1.0 if quote in rates.usd_quotes else rates.factor(quote, ts_ms)
        if factor is None:
            return self._reject(tick, "unsupported_quote")
        if not math.isfinite(price) or price <= 0:
            return self._reject(tick, "bad_price")
        if ts_ms - recv_ns // 1_000_000 > max_age_ms:
            return self._reject(tick, "future_ts")
        state = self._assets.get(base)
        if state is None:
            state = self._assets[base] = _Asset()
        if ts_ms > state.watermark:
            state.watermark = ts_ms
        now = state.watermark
        if now - ts_ms > max_age_ms:
            return self._reject(tick, "stale")
        usd = price * factor
        insane = self.guard.insane(base, usd, now)
        if insane:
            return self._reject(tick, insane)
        # One price per (asset, venue): a venue's markets of one asset (BTC/USD, BTC/USDT)
        # share it, the latest tick wins.
        venues = state.venues
        mine = venues.get(venue)
        if mine is None:
            mine = venues[venue] = VenuePrice(usd, ts_ms, recv_ns, tick.symbol)
        else:
            mine.usd, mine.ts_ms, mine.recv_ns, mine.symbol = usd, ts_ms, recv_ns, tick.symbol
        if len(venues) == 1:
            # The only venue of the asset, fresh (not stale, above): no reference to judge
            # it by, so it is no outlier and the consensus is its own price.
            mine.outlier = False
            usd_now, count, oldest = usd, 1, ts_ms
        else:
            outlier_pct = self.rules.outlier_pct
            names, prices = self._fresh(state, now)
            i = names.index(venue)
            mine.outlier = consensus.deviates(
                prices[i], consensus.reference(prices, i), outlier_pct
            )
            if mine.outlier:
                return self._reject(tick, "outlier")
            agree = consensus.agreeing(prices, outlier_pct)
            usd_now = consensus.median([prices[j] for j in agree])
            count = len(agree)
            oldest = min(venues[names[j]].ts_ms for j in agree)
        trust = self.guard.judge(base, now, usd_now, count)
        confirmed: float | None = None
        if trust in ACTED_ON:
            confirmed = usd_now if confirm.confirm_ms == 0 else confirm.update(base, now, usd_now)
        else:
            _HELD[trust].inc()
        result = AssetPrice(
            base, usd_now, venue, tick.symbol, ts_ms, count, confirmed, now - oldest, trust
        )
        self.latest[base] = result
        # A stablecoin's USD price converts every price quoted in it: only once acted on.
        if trust in ACTED_ON and base in rates.stable and quote in rates.usd_quotes:
            rates.observe(base, usd_now, now)
        return result

    def _fresh(self, state: _Asset, now: int) -> tuple[list[str], list[float]]:
        horizon = now - self._max_age_ms
        names = [v for v, p in state.venues.items() if p.ts_ms >= horizon]
        return names, [state.venues[v].usd for v in names]

    def _reject(self, tick: Tick, reason: str) -> str:
        key = (tick.venue, reason)
        self.rejected[key] = self.rejected.get(key, 0) + 1
        PRICE_REJECTED.labels(tick.venue, reason).inc()
        return reason

    def acted_usd(self, asset: str) -> float | None:
        """The last consensus price of `asset` detection acted on (None: none yet)."""
        return self.guard.acted_usd(asset)

    def venue_usd(self, asset: str, venue: str) -> float | None:
        """`venue`'s own latest USD price of `asset` while fresh in event time, else None."""
        state = self._assets.get(asset)
        mine = state.venues.get(venue) if state is not None else None
        if state is None or mine is None or state.watermark - mine.ts_ms > self._max_age_ms:
            return None
        return mine.usd

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
                "trust": last.trust if last else None,
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
