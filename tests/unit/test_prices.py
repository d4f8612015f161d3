"""One price per asset: USD conversion, cross-venue median, stale and outlier guards,
the de-peg alarm and the confirm_ms debounce, by hand-computed cases."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from monitor.prices import AssetPrice, PriceBoard, PriceRules
from monitor.prices.confirm import ConfirmWindow
from monitor.prices.consensus import agreeing, median, reference
from monitor.prices.guard import GuardRules
from streams.ticks import Tick

T0 = 1_785_000_000_000  # 2026-07-25, ms


def tick(venue: str, price: float, at_ms: int = 0, symbol: str = "BTC/USD") -> Tick:
    base, quote = symbol.split("/")
    ts = T0 + at_ms
    return Tick(venue, symbol, base, quote, price, ts, ts * 1_000_000)


def at_once(**rules: Any) -> PriceRules:
    """Rules that act on one venue's price at once (no hold): for conversion and debounce."""
    return PriceRules(guard=GuardRules(hold_s=0.0), **rules)


def priced(result: AssetPrice | str) -> AssetPrice:
    assert isinstance(result, AssetPrice), result
    return result


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Consensus ---------------------------------------------------------------------------------


def test_median_of_odd_and_even_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    with pytest.raises(ValueError):
        median([])


def test_reference_is_the_other_the_middle_of_three_or_the_others_median() -> None:
    assert reference([100.0], 0) is None
    assert reference([100.0, 104.0], 0) == 104.0
    # Three venues, one wick: the middle of three (100.5), not the midpoint of the others.
    assert reference([100.0, 101.0, 70.0], 0) == 100.0
    assert reference([100.0, 101.0, 70.0], 2) == 100.0
    assert reference([100.0, 101.0, 70.0, 102.0], 3) == 100.0  # median of 100, 101, 70


def test_one_wick_among_three_leaves_the_two_good_venues_agreeing() -> None:
    # 70 vs 100: 30% off; 100 vs 100 and 101 vs 100 (1%) within 2%.
    assert agreeing([100.0, 101.0, 70.0], 0.02) == [0, 1]
    assert agreeing([100.0, 103.0], 0.02) == []  # two that disagree: nobody to trust
    assert agreeing([100.0, 101.5], 0.02) == [0, 1]


# The board -----------------------------------------------------------------------------------


def test_single_venue_price_is_held_until_it_has_persisted_hold_s() -> None:
    board = PriceBoard(PriceRules(guard=GuardRules(hold_s=30.0)))
    p = priced(board.update(tick("binance", 100.0)))
    assert (p.usd, p.venues, p.confirmed, p.trust) == (100.0, 1, None, "single_venue")
    assert priced(board.update(tick("binance", 100.5, 29_999))).confirmed is None
    p = priced(board.update(tick("binance", 100.4, 30_000)))
    assert (p.usd, p.venues, p.confirmed, p.trust) == (100.4, 1, 100.4, "persistence")


def test_consensus_is_the_median_of_fresh_agreeing_venues() -> None:
    board = PriceBoard()
    board.update(tick("binance", 100.0))
    board.update(tick("coinbase", 101.0, 10))
    p = priced(board.update(tick("kraken", 100.4, 20)))
    assert (p.usd, p.venues) == (100.4, 3)


def test_flash_wick_on_one_of_three_venues_is_rejected_and_counted() -> None:
    board = PriceBoard()
    board.update(tick("binance", 100.0))
    board.update(tick("coinbase", 101.0, 10))
    before = sample("hm_price_rejected_total", venue="kraken", reason="outlier")
    assert board.update(tick("kraken", 70.0, 20)) == "outlier"
    assert sample("hm_price_rejected_total", venue="kraken", reason="outlier") == before + 1
    assert board.rejected[("kraken", "outlier")] == 1
    # The good venues go on agreeing while the wick is kraken's latest print.
    p = priced(board.update(tick("binance", 100.2, 30)))
    assert (p.usd, p.venues) == (100.6, 2)  # median of 100.2 and 101.0


def test_a_real_move_gets_through_once_a_second_venue_shows_it() -> None:
    board = PriceBoard()
    for i, venue in enumerate(("binance", "coinbase", "kraken")):
        board.update(tick(venue, 100.0, i))
    assert board.update(tick("binance", 90.0, 10)) == "outlier"
    p = priced(board.update(tick("coinbase", 90.5, 20)))
    # Middle of (90, 90.5, 100) is 90.5: binance and coinbase agree, kraken (100) is out.
    assert (p.usd, p.venues) == (90.25, 2)


def test_stale_venue_is_ignored_and_the_other_stands_alone() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    board.update(tick("kraken", 100.0, 0))
    # 30.001 s later kraken's 100 is stale: coinbase's 110 is not judged against it.
    p = priced(board.update(tick("coinbase", 110.0, 30_001)))
    assert (p.usd, p.venues) == (110.0, 1)
    # At exactly 30 s it would still be fresh (and 110 an outlier against it).
    other = PriceBoard(PriceRules(max_age_s=30.0))
    other.update(tick("kraken", 100.0, 0))
    assert other.update(tick("coinbase", 110.0, 30_000)) == "outlier"


def test_tick_older_than_max_age_behind_the_asset_is_stale() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    board.update(tick("coinbase", 100.0, 60_000))
    assert board.update(tick("kraken", 100.0, 29_999)) == "stale"
    assert board.rejected[("kraken", "stale")] == 1


def test_tick_stamped_in_the_future_is_rejected() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    t = tick("kraken", 100.0)
    future = Tick(t.venue, t.symbol, t.base, t.quote, 100.0, t.ts_ms + 31_000, t.recv_ns)
    assert board.update(future) == "future_ts"


def test_unsupported_quote_and_bad_price_are_rejected() -> None:
    board = PriceBoard()
    assert board.update(tick("kraken", 100.0, symbol="BTC/EUR")) == "unsupported_quote"
    assert board.update(tick("kraken", float("nan"))) == "bad_price"
    assert board.latest == {}


# Quote conversion and de-peg -------------------------------------------------------------------


def test_usdt_quote_converts_at_the_peg_without_a_live_rate() -> None:
    board = PriceBoard(PriceRules(pegs=(("USDT", 0.999),)))
    p = priced(board.update(tick("binance", 100_000.0, symbol="BTC/USDT")))
    assert p.usd == pytest.approx(99_900.0)


def test_usdt_quote_converts_at_the_live_usdt_usd_price() -> None:
    board = PriceBoard(at_once())
    board.update(tick("kraken", 0.998, 0, "USDT/USD"))
    p = priced(board.update(tick("binance", 100_000.0, 100, "BTC/USDT")))
    assert p.usd == pytest.approx(99_800.0)


def test_stale_live_rate_falls_back_to_the_peg() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    board.update(tick("kraken", 0.998, 0, "USDT/USD"))
    p = priced(board.update(tick("binance", 100_000.0, 30_001, "BTC/USDT")))
    assert p.usd == 100_000.0


def test_depeg_raises_the_alarm_moves_prices_and_clears(caplog: pytest.LogCaptureFixture) -> None:
    board = PriceBoard(at_once(depeg_pct=0.005))
    alarms = sample("hm_quote_depeg_alarms_total", quote="USDT")
    board.update(tick("kraken", 0.996, 0, "USDT/USD"))  # 0.4% off: no alarm
    assert sample("hm_quote_depeg", quote="USDT") == 0.0
    with caplog.at_level(logging.WARNING, logger="monitor.prices.quotes"):
        board.update(tick("kraken", 0.97, 10, "USDT/USD"))
        board.update(tick("kraken", 0.969, 15, "USDT/USD"))  # still de-pegged: one alarm
    assert sample("hm_quote_depeg", quote="USDT") == 1.0
    assert sample("hm_quote_depeg_alarms_total", quote="USDT") == alarms + 1
    assert caplog.messages == ["de-peg: USDT trades at 0.9700 USD, 3.00% off its 1.0000 peg"]
    p = priced(board.update(tick("binance", 100_000.0, 20, "BTC/USDT")))
    assert p.usd == pytest.approx(96_900.0)
    board.update(tick("kraken", 0.999, 30, "USDT/USD"))
    assert sample("hm_quote_depeg", quote="USDT") == 0.0


def test_quote_in_both_face_value_and_pegs_is_refused() -> None:
    with pytest.raises(ValueError, match="USDT"):
        PriceBoard(PriceRules(usd_quotes=("USD", "USDT"), pegs=(("USDT", 1.0),)))


# Debounce ----------------------------------------------------------------------------------


def test_confirm_window_is_the_max_over_the_window_once_covered() -> None:
    w = ConfirmWindow(2000, max_gap_ms=30_000)
    assert w.update("BTC", 0, 100.0) is None  # no history behind it yet
    assert w.update("BTC", 1000, 90.0) is None
    # At 2000 the window [0, 2000] holds 100 (in effect at 0), 90, 90: 100.
    assert w.update("BTC", 2000, 90.0) == 100.0
    # At 3000 the window [1000, 3000] holds only 90s: a trigger of 95 is confirmed.
    assert w.update("BTC", 3000, 90.0) == 90.0
    # A rebound to 99 at 3500 (until 5400) holds the confirmed price at 99 until 7400,
    # when 90 has lasted the full 2 s again.
    assert w.update("BTC", 3500, 99.0) == 99.0
    assert w.update("BTC", 5400, 90.0) == 99.0
    assert w.update("BTC", 7399, 90.0) == 99.0
    assert w.update("BTC", 7400, 90.0) == 90.0


def test_confirm_window_restarts_after_a_gap_and_zero_means_now() -> None:
    w = ConfirmWindow(2000, max_gap_ms=30_000)
    w.update("BTC", 0, 90.0)
    assert w.update("BTC", 2000, 90.0) == 90.0
    assert w.update("BTC", 40_000, 90.0) is None  # 38 s without a price: start over
    assert ConfirmWindow(0, max_gap_ms=1).update("BTC", 5, 42.0) == 42.0


def test_board_passes_the_confirmed_price_in_event_time() -> None:
    board = PriceBoard(at_once(confirm_ms=2000))
    assert priced(board.update(tick("binance", 100.0, 0))).confirmed is None
    assert priced(board.update(tick("binance", 90.0, 1000))).confirmed is None
    assert priced(board.update(tick("binance", 90.0, 2000))).confirmed == 100.0
    p = priced(board.update(tick("binance", 90.0, 3000)))
    assert (p.usd, p.confirmed) == (90.0, 90.0)
