"""Synthetic portfolios for the demo, tests and benchmarks (never for real tax work).

Lots are bought over the three years before `as_of` at prices scattered around the
simulated market's starting prices (streams.simulator.universe), so at the start of a
simulation some lots are under water and some are in profit, some short-term and some
long-term. Deterministic for a seed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import polars as pl

from monitor.portfolio import LOT_SCHEMA, MONEY
from streams.simulator.universe import UNIVERSE

ACCOUNTS: dict[str, tuple[str, ...]] = {
    "alice-taxable": ("coinbase-main", "binance-spot", "ledger-cold"),
    "bob-trust": ("kraken-1", "coinbase-main"),
    "carol-llc": ("binance-spot", "kraken-1", "fireblocks-vault", "coinbase-prime"),
}


def sample_portfolio(
    lots: int, *, seed: int = 2026, as_of: date = date(2026, 11, 1)
) -> pl.DataFrame:
    """`lots` synthetic tax lots over 3 accounts, 9 wallets and the 24 simulated assets."""
    rng = np.random.default_rng(seed)
    weights = np.array([1.0 / (1 + i) ** 0.6 for i in range(len(UNIVERSE))])
    asset_idx = rng.choice(len(UNIVERSE), size=lots, p=weights / weights.sum())
    start = np.array([a.start_usd for a in UNIVERSE])[asset_idx]
    # Bought around today's prices: lognormal spread, mostly below (about a quarter under water).
    buy_price = start * np.exp(rng.normal(-0.18, 0.30, size=lots))
    notional = np.exp(rng.uniform(np.log(300.0), np.log(40_000.0), size=lots))
    quantity = np.round(notional / buy_price, 8)
    quantity = np.where(quantity <= 0, 1e-8, quantity)
    cost_basis = np.round(quantity * buy_price * 1.001, 2)  # 0.1% fee in the basis
    age_days = rng.integers(1, 3 * 365, size=lots)
    as_of_ord = as_of.toordinal()
    acquired = [date.fromordinal(as_of_ord - int(d)) for d in age_days]
    pairs = [(acct, w) for acct, wallets in ACCOUNTS.items() for w in wallets]
    pair_idx = rng.integers(0, len(pairs), size=lots)
    assets = [UNIVERSE[i].base for i in asset_idx]
    return pl.DataFrame(
        {
            "lot_id": [f"L{i + 1:07d}" for i in range(lots)],
            "account": [pairs[i][0] for i in pair_idx],
            "wallet": [pairs[i][1] for i in pair_idx],
            "asset": assets,
            "quantity": [Decimal(f"{q:.8f}") for q in quantity],
            "cost_basis_usd": [Decimal(f"{c:.2f}") for c in cost_basis],
            "acquired_at": [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in acquired],
        },
        schema=LOT_SCHEMA,
    )


def write_portfolio_csv(frame: pl.DataFrame, path: str) -> None:
    """Write a lot frame in the portfolio CSV contract (dates as YYYY-MM-DD when midnight)."""
    out = frame.with_columns(
        pl.col("quantity").cast(MONEY).map_elements(_plain, return_dtype=pl.String),
        pl.col("cost_basis_usd").map_elements(_plain, return_dtype=pl.String),
        pl.col("acquired_at").dt.strftime("%Y-%m-%d"),
    )
    out.write_csv(path)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
