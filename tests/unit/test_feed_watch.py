"""Monitor-side feed health (stale venues, assets without a fresh price) and the feed
configuration: `[[feeds]]` validation, symbols derived from the portfolio, the example."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from monitor.errors import ConfigError
from monitor.feeds import build_feed_configs, feed_symbols, rate_quotes
from monitor.prices import PriceBoard, PriceRules
from monitor.prices.health import FeedWatch
from monitor.settings import FeedSettings, Settings, load_settings
from streams.feeds.interface import FeedState, FeedStatus
from streams.ticks import Tick

S = 1_000_000_000  # ns per second
T0 = 1_785_000_000 * S


def tick(venue: str, base: str, at_s: float) -> Tick:
    recv = T0 + int(at_s * S)
    return Tick(venue, f"{base}/USD", base, "USD", 100.0, recv // 1_000_000, recv)


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_venue_silent_past_the_threshold_is_reported_then_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    watch = FeedWatch(60.0, ["wv-a", "wv-b"], board=board, now_ns=T0)
    board.update(tick("wv-a", "BTC", 0))
    board.update(tick("wv-b", "BTC", 0))
    episodes = gauge("hm_venue_stale_episodes_total", venue="wv-b") or 0.0
    board.update(tick("wv-a", "BTC", 61))
    with caplog.at_level(logging.INFO, logger="monitor.prices.health"):
        watch.check(T0 + 60 * S)
        assert watch.stale == []  # 60 s is not past 60 s
        watch.check(T0 + 61 * S)
        assert watch.stale == ["wv-b"]
        assert gauge("hm_venue_stale", venue="wv-b") == 1.0
        assert gauge("hm_venue_stale_episodes_total", venue="wv-b") == episodes + 1
        board.update(tick("wv-b", "BTC", 62))
        watch.check(T0 + 62 * S)
    assert watch.stale == []
    assert gauge("hm_venue_stale", venue="wv-b") == 0.0
    assert "venue wv-b stale: no tick for 61.0 s" in caplog.messages
    assert "venue wv-b fresh again" in caplog.messages


def test_venue_that_never_ticks_is_stale_from_the_watch_start() -> None:
    watch = FeedWatch(5.0, ["wv-never"], now_ns=T0)
    watch.check(T0 + 6 * S)
    assert watch.stale == ["wv-never"]


def test_assets_without_a_fresh_venue_are_listed_and_counted() -> None:
    board = PriceBoard(PriceRules(max_age_s=30.0))
    watch = FeedWatch(20.0, ["wv-a"], board=board, assets=["BTC", "ETH", "SOL"], now_ns=T0)
    board.update(tick("wv-a", "BTC", 0))
    watch.check(T0 + 10 * S)
    assert watch.excluded == []  # ETH and SOL not priced yet, but venues get 20 s to start
    board.update(tick("wv-a", "ETH", 20))
    watch.check(T0 + 31 * S)  # BTC's last tick is 31 s old, ETH's 11 s; SOL never priced
    assert watch.excluded == ["BTC", "SOL"]
    assert gauge("hm_price_assets_without_fresh_venue") == 2.0
    board.update(tick("wv-a", "BTC", 32))
    watch.check(T0 + 33 * S)
    assert watch.excluded == ["SOL"]


def test_status_parts_and_health_show_each_venue() -> None:
    board = PriceBoard()
    watch = FeedWatch(60.0, ["wv-k"], board=board, now_ns=T0)
    board.update(tick("wv-k", "BTC", 0))
    status = FeedStatus("wv-k", FeedState.SUBSCRIBED, reconnects=2, gaps=1, dropped={"bad": 3})
    watch.check(T0 + 2 * S)
    assert watch.describe([status])[0] == "wv-k subscribed age 2.0s rc 2 gaps 1 drop 3"
    venue = watch.snapshot([status])["venues"]["wv-k"]
    assert venue == {
        "age_s": 2.0,
        "stale": False,
        "state": "subscribed",
        "reconnects": 2,
        "gaps": 1,
        "dropped": {"bad": 3},
    }


# Configuration -------------------------------------------------------------------------------


def test_example_config_equals_the_defaults() -> None:
    example = load_settings(Path(__file__).parents[2] / "config" / "monitor.example.toml")
    assert example.feeds == Settings().feeds
    assert example.prices == Settings().prices
    assert [f.venue for f in example.feeds] == ["binance", "coinbase", "kraken"]


def test_symbols_derive_from_assets_quotes_and_stablecoin_rates() -> None:
    s = Settings()
    assert rate_quotes(s) == ("USDT",)
    configs = {c.venue: c.symbols for c in build_feed_configs(s, ["ETH", "BTC", "USDT"])}
    assert configs == {
        "binance": ("BTC/USDT", "ETH/USDT"),
        "coinbase": ("BTC/USD", "ETH/USD", "USDT/USD"),
        "kraken": ("BTC/USD", "ETH/USD", "USDT/USD"),
    }


def test_listed_symbols_win_and_urls_override_per_venue() -> None:
    feed = FeedSettings(venue="kraken", symbols=["btc/usd"], quotes=["USD"])
    assert feed_symbols(feed, ["ETH"], rates=["USDT"]) == ("BTC/USD",)
    s = load_settings(overrides={"feeds": [{"venue": "kraken", "url": "wss://x"}]})
    (config,) = build_feed_configs(s, ["BTC"], {"kraken": "ws://127.0.0.1:1"})
    assert (config.url, config.symbols) == ("ws://127.0.0.1:1", ("BTC/USDT",))


def test_ccxt_entry_carries_its_exchange_id() -> None:
    entry = {"venue": "binance_ccxt", "kind": "ccxt", "exchange_id": "binance", "quotes": ["USDC"]}
    (config,) = build_feed_configs(load_settings(overrides={"feeds": [entry]}), ["BTC"])
    assert (config.venue, config.kind, config.exchange_id) == ("binance_ccxt", "ccxt", "binance")
    assert config.symbols == ("BTC/USDC",)


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ([{"venue": "okx"}], "venue 'okx' has no native feed"),
        ([{"venue": "okx", "kind": "ccxt", "quotes": []}], "quotes must be a non-empty list"),
        ([{"venue": "kraken"}, {"venue": "kraken"}], "venue kraken has more than one"),
        ([{"venue": "Bad Id", "kind": "ccxt"}], "must be a lower-case id"),
        ([{"venue": "kraken", "exchange_id": "kraken"}], "exchange_id is for kind"),
    ],
)
def test_bad_feed_entries_stop_startup_naming_the_key(
    feeds: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(overrides={"feeds": feeds})
    assert "feeds" in str(info.value)


def test_quote_both_at_face_value_and_pegged_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="USDT in both usd_quotes"):
        load_settings(overrides={"prices.usd_quotes": ["USD", "USDT"]})
