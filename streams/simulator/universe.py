"""The simulated market's assets: starting USD prices and how wild each one is.

Starting prices are round figures of the kind seen in 2025-2026; the example portfolio
(monitor/examples/portfolio.example.csv) was generated against them, so some of its lots start
under water. `annual_vol` is the asset's own volatility; `beta` its loading on the
common crypto factor (which gives the paths their correlation).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimAsset:
    """One simulated asset."""

    base: str
    start_usd: float
    annual_vol: float
    beta: float
    price_decimals: int  # decimals the venue prints prices with


UNIVERSE: tuple[SimAsset, ...] = (
    SimAsset("BTC", 90_000.0, 0.55, 1.00, 2),
    SimAsset("ETH", 3_000.0, 0.70, 1.10, 2),
    SimAsset("SOL", 140.0, 0.95, 1.30, 3),
    SimAsset("BNB", 850.0, 0.60, 0.90, 2),
    SimAsset("XRP", 2.10, 0.90, 1.10, 4),
    SimAsset("ADA", 0.45, 0.95, 1.20, 4),
    SimAsset("DOGE", 0.15, 1.10, 1.30, 5),
    SimAsset("AVAX", 14.0, 1.00, 1.30, 3),
    SimAsset("DOT", 2.50, 0.95, 1.20, 3),
    SimAsset("LINK", 13.0, 0.95, 1.20, 3),
    SimAsset("LTC", 85.0, 0.80, 1.00, 2),
    SimAsset("ATOM", 2.80, 0.95, 1.20, 3),
    SimAsset("NEAR", 1.90, 1.05, 1.30, 3),
    SimAsset("UNI", 6.00, 1.00, 1.20, 3),
    SimAsset("AAVE", 180.0, 1.00, 1.20, 2),
    SimAsset("ARB", 0.22, 1.10, 1.30, 4),
    SimAsset("OP", 0.35, 1.10, 1.30, 4),
    SimAsset("INJ", 6.00, 1.15, 1.30, 3),
    SimAsset("FIL", 1.50, 1.00, 1.20, 3),
    SimAsset("APT", 1.80, 1.10, 1.30, 4),
    SimAsset("SUI", 1.60, 1.20, 1.40, 4),
    SimAsset("TRX", 0.28, 0.60, 0.70, 5),
    SimAsset("XLM", 0.25, 0.90, 1.10, 5),
    SimAsset("ETC", 13.0, 0.90, 1.10, 3),
)

BY_BASE: dict[str, SimAsset] = {a.base: a for a in UNIVERSE}
