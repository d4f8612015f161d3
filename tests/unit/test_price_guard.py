"""The bad-print guard by hand-made cases: which consensus prices detection acts on
(two venues, or one venue's price that persisted), which it holds (single_venue, jump),
and which ticks are no price at all (bad_price, subnormal, below_min, absurd_jump)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from monitor.prices import AssetPrice, PriceBoard, PriceRules
from monitor.prices.guard import GuardRules, PriceGuard
from streams.ticks import Tick

T0 = 1_785_000_000_000  # 2026-07-25, ms
RULES = GuardRules(hold_s=30.0, jump_pct=0.10, min_usd=1e-12, absurd_factor=10.0)


def guard(rules: GuardRules = RULES) -> PriceGuard:
    return PriceGuard(rules)


def tick(venue: str, price: float, at_ms: int = 0, symbol: str = "BTC/USD") -> Tick:
    base, quote = symbol.split("/")
    ts = T0 + at_ms
    return Tick(venue, symbol, base, quote, price, ts, ts * 1_000_000)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# The guard alone -----------------------------------------------------------------------------


def test_two_agreeing_venues_are_acted_on_at_once() -> None:
    assert guard().judge("BTC", 0, 90_000.0, 2) == "venues"


def test_one_venue_is_held_for_hold_s_then_acted_on_by_persistence() -> None:
    g = guard()
    assert g.judge("BTC", 0, 90_000.0, 1) == "single_venue"
    assert g.judge("BTC", 29_999, 90_100.0, 1) == "single_venue"
    assert g.acted_usd("BTC") is None
    assert g.judge("BTC", 30_000, 90_200.0, 1) == "persistence"
    assert g.acted_usd("BTC") == 90_200.0


def test_one_venue_after_a_consensus_must_still_persist() -> None:
    # Three venues agreed at 90,000 until t=10 s; from 40 s one venue alone: held 30 s.
    g = guard()
    assert g.judge("BTC", 10_000, 90_000.0, 3) == "venues"
    assert g.judge("BTC", 40_000, 90_050.0, 1) == "single_venue"
    assert g.judge("BTC", 69_999, 90_050.0, 1) == "single_venue"
    assert g.judge("BTC", 70_000, 90_060.0, 1) == "persistence"


def test_one_venue_jump_beyond_the_band_is_held_until_it_has_lasted_hold_s() -> None:
    g = guard()
    g.judge("BTC", 0, 62_000.0, 1)
    assert g.judge("BTC", 30_000, 62_000.0, 1) == "persistence"
    # 62,000 -> 55,000 is 11.3% of 62,000... but the band is 10% of the new price,
    # 5,500: 7,000 above it is beyond. Held while 62,000 is in the last 30 s.
    assert g.judge("BTC", 31_000, 55_000.0, 1) == "jump"
    assert g.judge("BTC", 60_999, 55_000.0, 1) == "jump"
    # At 61 s the window [31 s, 61 s] holds only 55,000: acted on.
    assert g.judge("BTC", 61_000, 55_100.0, 1) == "persistence"
    assert g.acted_usd("BTC") == 55_100.0


def test_a_move_inside_the_band_is_not_a_jump() -> None:
    g = guard()
    g.judge("BTC", 0, 62_000.0, 1)
    g.judge("BTC", 30_000, 62_000.0, 1)
    # 57,000: 5,000 below 62,000, inside 10% of 57,000 (5,700).
    assert g.judge("BTC", 31_000, 57_000.0, 1) == "persistence"


def test_a_second_venue_confirms_a_jump_at_once() -> None:
    g = guard()
    g.judge("BTC", 0, 62_000.0, 1)
    g.judge("BTC", 30_000, 62_000.0, 1)
    assert g.judge("BTC", 31_000, 50_000.0, 2) == "venues"


def test_sparse_ticks_a_minute_apart_persist_like_dense_ones() -> None:
    g = guard()
    assert g.judge("BTC", 0, 62_000.0, 1) == "single_venue"
    # 62,000 held from 0 to 60 s (a step function), then 61,500: within 10%.
    assert g.judge("BTC", 60_000, 61_500.0, 1) == "persistence"
    # A bad print a minute later is a jump from the 61,500 in effect 30 s before.
    assert g.judge("BTC", 120_000, 40_000.0, 1) == "jump"


def test_hold_zero_acts_on_one_venue_at_once() -> None:
    assert guard(GuardRules(hold_s=0.0)).judge("BTC", 0, 1.0, 1) == "persistence"


@pytest.mark.parametrize(
    ("usd", "reason"),
    [
        (0.0, "bad_price"),
        (-1.0, "bad_price"),
        (float("nan"), "bad_price"),
        (float("inf"), "bad_price"),
        (5e-324, "subnormal"),  # the smallest positive double
        (2.0e-308, "subnormal"),  # under 2.2250738585072014e-308
        (1e-300, "below_min"),
        (9.9e-13, "below_min"),
    ],
)
def test_prices_outside_sane_bounds_are_named(usd: float, reason: str) -> None:
    assert guard().insane("BTC", usd, 0) == reason


def test_absurd_jump_from_the_last_acted_on_price_is_named() -> None:
    g = guard()
    g.judge("BTC", 0, 90_000.0, 3)
    assert g.insane("BTC", 0.0001, 40_000) == "absurd_jump"
    assert g.insane("BTC", 8_999.0, 40_000) == "absurd_jump"  # under 90,000 / 10
    assert g.insane("BTC", 9_000.0, 40_000) == ""
    assert g.insane("BTC", 900_000.0, 40_000) == ""
    assert g.insane("BTC", 900_001.0, 40_000) == "absurd_jump"
    # An hour (absurd_window_s) after the last acted-on price there is no reference.
    assert g.insane("BTC", 0.0001, 3_600_001) == ""
    assert g.insane("ETH", 0.0001, 40_000) == ""  # never priced: nothing to jump from


def test_rules_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        guard(GuardRules(jump_pct=0.0))
    with pytest.raises(ValueError):
        guard(GuardRules(absurd_factor=1.0))


# Through the price board -------------------------------------------------------------------


def test_the_issue_case_two_venues_quiet_one_prints_0_0001() -> None:
    """Three venues agree at 90,000; two go quiet past max_age_s; one prints 0.0001."""
    board = PriceBoard(PriceRules(max_age_s=30.0, guard=RULES))
    for i, venue in enumerate(("binance", "coinbase", "kraken")):
        board.update(tick(venue, 90_000.0 + i, i))
    before = sample("hm_price_rejected_total", venue="kraken", reason="absurd_jump")
    assert board.update(tick("kraken", 0.0001, 40_000)) == "absurd_jump"
    assert board.update(tick("kraken", 1e-300, 40_001)) == "below_min"
    assert sample("hm_price_rejected_total", venue="kraken", reason="absurd_jump") == before + 1
    assert board.rejected[("kraken", "below_min")] == 1
    assert board.acted_usd("BTC") == 90_001.0


def test_a_plausible_bad_print_on_the_last_fresh_venue_is_held() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0, guard=RULES))
    for i, venue in enumerate(("binance", "coinbase", "kraken")):
        board.update(tick(venue, 90_000.0, i))
    held = sample("hm_price_held_total", reason="single_venue")
    p = board.update(tick("kraken", 47_000.0, 40_000))
    assert isinstance(p, AssetPrice)
    assert (p.usd, p.venues, p.trust, p.confirmed) == (47_000.0, 1, "single_venue", None)
    assert sample("hm_price_held_total", reason="single_venue") == held + 1
    back = board.update(tick("kraken", 90_000.0, 40_100))
    assert isinstance(back, AssetPrice) and back.confirmed is None


def test_consensus_age_is_the_oldest_agreeing_venue_price() -> None:
    board = PriceBoard(PriceRules(guard=RULES))
    board.update(tick("binance", 100.0, 0))
    board.update(tick("coinbase", 100.1, 4_000))
    p = board.update(tick("kraken", 100.2, 9_500))
    assert isinstance(p, AssetPrice)
    assert (p.venues, p.age_ms, p.trust) == (3, 9_500, "venues")


def test_a_stablecoin_rate_moves_conversion_only_once_acted_on() -> None:
    """USDT/USD from one venue is held: BTC/USDT still converts at the peg. Once a second
    venue agrees (whatever the confirm_ms debounce), the live rate converts."""
    board = PriceBoard(PriceRules(confirm_ms=5_000, guard=RULES))
    board.update(tick("kraken", 0.97, 0, "USDT/USD"))
    p = board.update(tick("binance", 100_000.0, 10, "BTC/USDT"))
    assert isinstance(p, AssetPrice) and p.usd == 100_000.0
    board.update(tick("coinbase", 0.97, 20, "USDT/USD"))
    p = board.update(tick("binance", 100_000.0, 30, "BTC/USDT"))
    assert isinstance(p, AssetPrice) and p.usd == pytest.approx(97_000.0)
