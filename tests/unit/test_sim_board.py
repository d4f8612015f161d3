"""The quote board's venue behaviour: stablecoin pegs, flash wicks, per-venue noise."""

from __future__ import annotations

import pytest

from streams.simulator.board import QuoteBoard
from streams.simulator.market import SharedMarket
from streams.simulator.prices import PricePaths
from streams.simulator.universe import UNIVERSE

SYMBOLS = ["BTC/USDT", "BTC/USD", "USDT/USD", "ETH/BTC"]


def board(noise_bp: float = 0.0, seed: int = 7) -> QuoteBoard:
    return QuoteBoard(PricePaths(UNIVERSE, 7), SYMBOLS, seed=seed, noise_bp=noise_bp)


def test_a_stablecoin_lists_at_its_peg() -> None:
    b = board()
    b.step()
    assert b.last_prices()["USDT/USD"] == 1.0


def test_a_de_peg_moves_usdt_quoted_prices_and_not_usd_ones() -> None:
    b, ref = board(), board()
    b.drift_peg("USDT", 0.95)
    b.step()
    ref.step()
    got, want = b.last_prices(), ref.last_prices()
    assert (got["USDT/USD"], got["BTC/USD"], got["BTC/USDT"]) == (
        0.95,
        want["BTC/USD"],
        pytest.approx(want["BTC/USDT"] / 0.95, abs=0.01),
    )


def test_a_gradual_drift_reaches_its_target_after_the_steps() -> None:
    b = board()
    b.drift_peg("USDT", 0.97, steps=10)
    seen = []
    for _ in range(12):
        b.step()
        seen.append(b.peg("USDT"))
    assert (seen[0] < 1.0, seen[4] > 0.97, seen[9:]) == (True, True, [0.97, 0.97, 0.97])


def test_usd_cannot_de_peg() -> None:
    with pytest.raises(ValueError, match="stablecoin"):
        board().drift_peg("USD", 0.9)


def test_a_flash_wick_prints_once_far_off_then_the_market_again() -> None:
    b, ref = board(), board()
    b.flash_wick("BTC", 0.7)
    prints = []
    for _ in range(2):
        b.step()
        ref.step()
        prints.append(b.last_prices()["BTC/USD"] / ref.last_prices()["BTC/USD"])
    assert prints == [pytest.approx(0.7, abs=1e-6), 1.0]


def test_venue_noise_is_small_and_differs_by_seed() -> None:
    a, c, ref = board(2.0, seed=1), board(2.0, seed=2), board()
    for x in (a, c, ref):
        x.step()
    pa, pc, pr = (x.last_prices()["BTC/USD"] for x in (a, c, ref))
    assert (pa != pc, abs(pa / pr - 1) < 0.002, abs(pc / pr - 1) < 0.002) == (True, True, True)


def test_boards_of_a_shared_market_print_the_same_prices() -> None:
    market = SharedMarket(PricePaths(UNIVERSE, 7), interval_s=3600.0)
    one = QuoteBoard(market.paths, SYMBOLS, seed=1, advance=market.advance)
    two = QuoteBoard(market.paths, SYMBOLS, seed=2, advance=market.advance)
    one.step()
    two.step()
    assert one.last_prices() == two.last_prices()
