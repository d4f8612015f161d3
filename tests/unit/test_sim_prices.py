"""Simulated price paths: deterministic per seed, correlated, with drawdowns; the quote board."""

from __future__ import annotations

import numpy as np
import pytest

from streams.simulator.prices import SECONDS_PER_YEAR, PricePaths, QuoteBoard
from streams.simulator.universe import BY_BASE, UNIVERSE


def run(seed: int, steps: int, **kwargs: float) -> np.ndarray:
    paths = PricePaths(UNIVERSE, seed, **kwargs)
    return np.array([paths.step() for _ in range(steps)])


def log_returns(prices: np.ndarray, base: str) -> np.ndarray:
    column = [a.base for a in UNIVERSE].index(base)
    return np.diff(np.log(prices[:, column]))


def test_same_seed_gives_the_same_paths() -> None:
    assert np.array_equal(run(7, 500), run(7, 500))


def test_another_seed_gives_other_paths() -> None:
    assert not np.allclose(run(7, 50), run(8, 50))


def test_paths_start_from_the_universe_prices() -> None:
    paths = PricePaths(UNIVERSE, 7)
    assert paths.prices().tolist() == pytest.approx([a.start_usd for a in UNIVERSE])


def test_high_beta_assets_are_positively_correlated() -> None:
    prices = run(7, 5_000)
    corr = np.corrcoef(log_returns(prices, "SOL"), log_returns(prices, "AVAX"))[0, 1]
    assert corr > 0.3


def test_annualized_volatility_is_close_to_the_assets() -> None:
    prices = run(7, 50_000)
    steps_per_year = SECONDS_PER_YEAR / 60.0
    realized = log_returns(prices, "BTC").std() * np.sqrt(steps_per_year)
    assert realized == pytest.approx(BY_BASE["BTC"].annual_vol, rel=0.25)


def test_volatility_scale_multiplies_the_volatility() -> None:
    calm = log_returns(run(7, 5_000), "ETH").std()
    wild = log_returns(run(7, 5_000, volatility_scale=2.0), "ETH").std()
    assert wild / calm == pytest.approx(2.0, rel=0.1)


def test_returns_have_fat_tails() -> None:
    r = log_returns(run(7, 20_000), "BTC")
    kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2
    assert kurtosis > 4.0  # a normal distribution has 3


def test_some_asset_falls_10pct_below_its_start_within_1200_steps() -> None:
    prices = run(7, 1_200)
    start = np.array([a.start_usd for a in UNIVERSE])
    assert (prices / start).min() <= 0.90


def test_set_price_moves_one_asset_and_keeps_the_random_sequence() -> None:
    plain, moved = PricePaths(UNIVERSE, 7), PricePaths(UNIVERSE, 7)
    plain.step()
    moved.step()
    ratio = 45_000.0 / plain.prices()[0]
    moved.set_price("BTC", 45_000.0)
    a, b = plain.step(), moved.step()
    assert np.allclose([b[0] / a[0], *b[1:]], [ratio, *a[1:]])


def test_force_multiplies_the_current_price() -> None:
    paths = PricePaths(UNIVERSE, 7)
    paths.force("eth", 0.5)
    assert paths.prices()[1] == pytest.approx(BY_BASE["ETH"].start_usd * 0.5)


def test_unknown_asset_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="BTC"):
        PricePaths(UNIVERSE, 7).set_price("NOPE", 1.0)


def test_board_prints_prices_with_the_assets_decimals() -> None:
    board = QuoteBoard(PricePaths(UNIVERSE, 7), ["BTC/USDT", "DOGE/USDC"], seed=7)
    board.step()
    btc, doge = board.price_str(0), board.price_str(1)
    assert (len(btc.split(".")[1]), len(doge.split(".")[1])) == (2, 5)


def test_board_prices_usd_quotes_alike_and_crosses_by_ratio() -> None:
    board = QuoteBoard(PricePaths(UNIVERSE, 7), ["ETH/USDT", "ETH/USD", "ETH/BTC"], seed=7)
    board.step()
    usdt, usd, cross = (board.last_prices()[s] for s in ("ETH/USDT", "ETH/USD", "ETH/BTC"))
    btc = float(board.paths.prices()[0])
    assert [usdt, cross] == pytest.approx([usd, usdt / btc], rel=1e-6)


def test_board_refuses_a_symbol_it_cannot_price() -> None:
    with pytest.raises(ValueError, match="not simulated"):
        QuoteBoard(PricePaths(UNIVERSE, 7), ["PEPE/USDT"], seed=7)


def test_board_trade_ids_grow_by_one_per_step() -> None:
    board = QuoteBoard(PricePaths(UNIVERSE, 7), ["BTC/USDT"], seed=7)
    board.step()
    first = board.trade_id(0)
    board.step()
    assert board.trade_id(0) == first + 1
