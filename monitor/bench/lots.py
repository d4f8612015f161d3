"""Synthetic open lots for the bench, placed against the simulated price paths.

Most lots ("cold") have triggers below anything the path reaches, like a portfolio that
is mostly in profit: each costs the index nothing but its place in a binary search, and
never fires. A few per asset ("hot") have triggers spread log-uniformly between the
path's low and its starting price (none fires on the very first tick), so the price
keeps crossing some of them and, with the bench's settings (`BENCH_OVERRIDES`: cooldown
0, a narrow re-arm band), a steady share of ticks alerts. The hot
lots do not depend on the lot count: every size in the scaling section fires the same
alerts, so its cost per tick compares the index alone.

Quantity and basis are chosen so each lot's trigger (monitor.triggers) lands where it is
placed: with a fixed notional every rule scales with the unit basis, so
trigger = k * basis where k depends only on the notional and the lot's tax rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from monitor.bench.market import QUOTE, VENUE, MarketSpec, PathRange, path_range
from monitor.book import BookRules, book_rules
from monitor.portfolio import LOT_SCHEMA, MONEY
from monitor.samples import ACCOUNTS
from monitor.settings import Settings, load_settings
from monitor.triggers import trigger_prices

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

ALERT_SHARE = 0.02  # aimed share of ticks that cross at least one hot lot
MAX_HOT_PER_ASSET = 2_000
COLD_TOP = 0.8  # cold triggers lie below this fraction of the path's low
SHORT_AGES = (10, 350)  # days held: short-term, far from turning long-term
LONG_AGES = (380, 1_000)  # days held: long-term
NOTIONAL_USD = (1_000.0, 20_000.0)  # cost basis of a lot, log-uniform
_PAIRS = [(account, wallet) for account, wallets in ACCOUNTS.items() for wallet in wallets]


@dataclass(frozen=True, slots=True)
class LotPlan:
    """Everything that fixes the synthetic lots; child processes rebuild them from it."""

    count: int
    market: MarketSpec
    steps: int  # price steps the hot lots are spread over (the longest section's)
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    seed: int = 2026


BENCH_OVERRIDES: dict[str, Any] = {
    "feeds": [{"venue": VENUE, "quotes": [QUOTE]}],  # the one simulated venue
    # Its market takes 1 ms of event time per step: a hold_s of persistence would hold
    # every price of a run. The guard still runs on every tick (its cost is measured).
    "prices.hold_s": 0.0,
    "harvest.cooldown_s": 0.0,  # a lot may alert again as soon as it re-arms ...
    "harvest.rearm_pct": 0.001,  # ... which takes a 0.1% rise above its trigger
    "alerts.stdout": False,  # the bench puts its own sinks in
    "alerts.file": "",
    "alerts.kafka": False,
    "metrics.port": 0,
}


def bench_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """The built-in defaults (no file, no environment) with `BENCH_OVERRIDES` and `overrides`."""
    return load_settings(env={}, overrides={**BENCH_OVERRIDES, **(overrides or {})})


def hot_per_asset(ranges: PathRange, share: float = ALERT_SHARE) -> I64:
    """Hot lots per asset so that about `share` of an asset's ticks cross one.

    A fall of d (in log price) crosses about h * d / log(start / low) of h triggers spread
    log-uniformly over that band; over the path, its falls inside the band add up to its
    down-variation.
    """
    width = np.log(ranges.start / ranges.low)
    wanted = share * ranges.steps * width / np.maximum(ranges.down_variation, 1e-12)
    hot: I64 = np.clip(np.ceil(wanted), 1, MAX_HOT_PER_ASSET).astype(np.int64)
    return hot


@dataclass(frozen=True, slots=True)
class DesignedLots:
    """The lot frame (the portfolio loader's schema) and how many of its first rows are hot."""

    frame: pl.DataFrame
    hot: int
    triggers: F64  # where each lot's trigger was placed (USD), row for row


def design_lots(plan: LotPlan, settings: Settings) -> DesignedLots:
    """`plan.count` open lots, hot ones first.

    The trigger rules are the daemon's own (`monitor.book.book_rules`: the rule pack's
    rates, not `[tax]`'s raw ones), so each lot's trigger in the running book lands where
    it was placed here.
    """
    rules = book_rules(settings)
    ranges = path_range(plan.market, plan.steps)
    hot = hot_per_asset(ranges)
    if hot.sum() > plan.count // 2:  # few lots: keep at least half of them cold
        hot = np.maximum(np.floor(hot * (plan.count // 2) / hot.sum()), 0).astype(np.int64)
    hot_assets = np.repeat(np.arange(plan.market.assets), hot)
    hot_rng = np.random.default_rng([plan.seed, 1])
    lo, hi = np.log(ranges.low[hot_assets]), np.log(ranges.start[hot_assets])
    hot_trigger = np.exp(hot_rng.uniform(lo, hi))

    cold_count = plan.count - hot_assets.size
    cold_rng = np.random.default_rng([plan.seed, 2])
    weights = 1.0 / (1.0 + np.arange(plan.market.assets)) ** 0.6  # BTC holds the most lots
    cold_assets = cold_rng.choice(plan.market.assets, size=cold_count, p=weights / weights.sum())
    cold_trigger = ranges.low[cold_assets] * cold_rng.uniform(0.05, COLD_TOP, size=cold_count)

    assets = np.concatenate([hot_assets, cold_assets])
    triggers = np.concatenate([hot_trigger, cold_trigger])
    columns = [_columns(hot_rng, hot_assets.size), _columns(cold_rng, cold_count)]
    notional, age, pair = (np.concatenate([c[i] for c in columns]) for i in range(3))
    frame = _frame(plan, rules, assets, triggers, notional, age, pair)
    return DesignedLots(frame, int(hot_assets.size), triggers)


def _columns(rng: np.random.Generator, n: int) -> tuple[F64, I64, I64]:
    low, high = NOTIONAL_USD
    notional = np.exp(rng.uniform(math.log(low), math.log(high), size=n))
    long_term = rng.random(n) < 0.5
    age = np.where(
        long_term, rng.integers(*LONG_AGES, size=n), rng.integers(*SHORT_AGES, size=n)
    ).astype(np.int64)
    pair = rng.integers(0, len(_PAIRS), size=n).astype(np.int64)
    return notional, age, pair


def _frame(
    plan: LotPlan,
    rules: BookRules,
    assets: I64,
    triggers: F64,
    notional: F64,
    age: I64,
    pair: I64,
) -> pl.DataFrame:
    today = (plan.today - date(1970, 1, 1)).days
    thresholds = rules.on(today)
    ages = np.unique(age)
    long_at = [rules.tax.long_term_from(plan.today - timedelta(days=int(a))) for a in ages]
    is_long = np.array([first is not None and first <= plan.today for first in long_at])
    long_term = is_long[np.searchsorted(ages, age)]  # as the book decides it (its tax pack)
    rate = np.where(long_term, thresholds.long_term_rate, thresholds.short_term_rate)
    factor = trigger_prices(notional, np.ones_like(notional), rate, thresholds)  # trigger/basis
    if not (factor > 0).all():
        raise ValueError(
            f"the harvest rules leave no trigger for a ${NOTIONAL_USD[0]:,.0f} lot; "
            "the bench's lot design needs a positive trigger"
        )
    qty_units = np.maximum(np.round(notional * factor / triggers * 1e8), 1).astype(np.int64)
    cost_cents = np.round(notional * 100).astype(np.int64)
    names = plan.market.bases()
    frame = pl.DataFrame(
        {
            "n": np.arange(assets.size, dtype=np.int64),
            "asset_i": assets,
            "pair_i": pair,
            "qty_units": qty_units,
            "cost_cents": cost_cents,
            "day": (today - age).astype(np.int32),
        }
    )
    width = max(7, len(str(assets.size)))
    return frame.select(
        (pl.lit("L") + pl.col("n").cast(pl.String).str.zfill(width)).alias("lot_id"),
        _pick("account", [a for a, _ in _PAIRS], "pair_i"),
        _pick("wallet", [w for _, w in _PAIRS], "pair_i"),
        _pick("asset", names, "asset_i"),
        (pl.col("qty_units").cast(MONEY) / pl.lit(10**8).cast(MONEY)).alias("quantity"),
        (pl.col("cost_cents").cast(MONEY) / pl.lit(100).cast(MONEY)).alias("cost_basis_usd"),
        pl.col("day").cast(pl.Date).cast(pl.Datetime("us", "UTC")).alias("acquired_at"),
    ).cast(pl.Schema(LOT_SCHEMA))


def _pick(name: str, values: list[str], index: str) -> pl.Expr:
    return pl.lit(pl.Series(name, values, dtype=pl.String)).gather(pl.col(index)).alias(name)
