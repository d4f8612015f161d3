"""Coinbase Advanced Trade message handling, on the samples of the reference doc."""

from __future__ import annotations

from streams.feeds.coinbase import CoinbaseProtocol, CoinbaseSession, products
from streams.feeds.interface import FeedConfig
from streams.feeds.symbols import Market
from streams.ticks import Tick
from tests.unit.recording_link import RecordingLink

RECV = 1_675_974_637_200_000_000

# /work/shared/reference/exchange-feeds.md: the envelope and the ticker event, verbatim.
TICKER = (
    '{"channel": "ticker", "client_id": "", "timestamp": "2023-02-09T20:30:37.167359596Z", '
    '"sequence_num": 0, "events": [{"type": "snapshot", "tickers": [{"type": "ticker", '
    '"product_id": "BTC-USD", "price": "21932.98", "volume_24_h": "16038.28770938", '
    '"low_24_h": "21835.29", "high_24_h": "23011.18", "low_52_w": "15460", "high_52_w": '
    '"48240", "price_percent_chg_24_h": "-4.15", "best_bid": "21932.97", '
    '"best_bid_quantity": "0.1", "best_ask": "21933.00", "best_ask_quantity": "0.2"}]}]}'
)
EXPECTED = Tick(
    "coinbase", "BTC/USD", "BTC", "USD", 21932.98, 1675974637167, RECV, 21932.97, 21933.0,
    "21932.98",
)  # fmt: skip
HEARTBEAT = (
    '{"channel": "heartbeats", "client_id": "", "timestamp": "2023-06-23T20:31:26.122969572Z", '
    '"sequence_num": %d, "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC '
    'm=+91717.525857105", "heartbeat_counter": "3049"}]}'
)


def session(*symbols: str, channel: str = "") -> tuple[CoinbaseSession, RecordingLink]:
    config = FeedConfig("coinbase", symbols or ("BTC/USD", "ETH/USD"), channel=channel)
    link = RecordingLink()
    return CoinbaseProtocol(config).session(link), link


def test_the_reference_ticker_becomes_a_tick() -> None:
    s, _ = session()
    assert s.handle(TICKER.encode(), RECV) == [EXPECTED]


def test_a_ticker_batch_without_best_bid_ask_gives_a_tick_without_them() -> None:
    s, _ = session(channel="ticker_batch")
    raw = (
        '{"channel": "ticker_batch", "client_id": "", "timestamp": "2023-03-01T12:15:18.382Z", '
        '"sequence_num": 0, "events": [{"type": "update", "tickers": [{"type": "ticker", '
        '"product_id": "ETH-USD", "price": "1650.5", "volume_24_h": "1"}]}]}'
    )
    tick = Tick(
        "coinbase", "ETH/USD", "ETH", "USD", 1650.5, 1677672918382, RECV, price_exact="1650.5"
    )
    assert s.handle(raw.encode(), RECV) == [tick]


def test_heartbeats_pass_silently() -> None:
    s, link = session()
    assert (s.handle((HEARTBEAT % 0).encode(), RECV), link.drops) == (None, [])


def test_a_jump_in_sequence_numbers_is_a_gap_of_the_missed_messages() -> None:
    s, link = session()
    for seq in (0, 1, 5):
        s.handle((HEARTBEAT % seq).encode(), RECV)
    assert link.gaps == [3]


def test_consecutive_sequence_numbers_are_no_gap() -> None:
    s, link = session()
    for seq in range(5):
        s.handle((HEARTBEAT % seq).encode(), RECV)
    assert link.gaps == []


def test_a_lower_sequence_number_never_drops_the_message() -> None:
    """The numbering's scope is not documented: a lower number is no reason to drop."""
    s, link = session()
    s.handle((HEARTBEAT % 4).encode(), RECV)
    out = s.handle(TICKER.encode(), RECV)  # sequence_num 0 < 5
    assert isinstance(out, list) and len(out) == 1
    assert link.gaps == []


def test_the_subscriptions_ack_covering_ticker_and_heartbeats_means_subscribed() -> None:
    s, link = session()
    ack = (
        '{"channel": "subscriptions", "client_id": "", "timestamp": "2023-02-09T20:30:37Z", '
        '"sequence_num": 0, "events": [{"subscriptions": {"ticker": ["BTC-USD", "ETH-USD"], '
        '"heartbeats": ["heartbeats"]}}]}'
    )
    s.handle(ack.encode(), RECV)
    assert link.subscribed_calls == 1


def test_the_documented_ack_without_a_heartbeats_key_means_subscribed() -> None:
    s, link = session()
    ack = (
        '{"channel": "subscriptions", "timestamp": "2023-02-09T20:30:37Z", "sequence_num": 0, '
        '"events": [{"subscriptions": {"ticker": ["BTC-USD", "ETH-USD"]}}]}'
    )
    s.handle(ack.encode(), RECV)
    assert link.subscribed_calls == 1


def test_a_partial_subscriptions_ack_is_not_yet_subscribed() -> None:
    s, link = session()
    ack = (
        '{"channel": "subscriptions", "timestamp": "2023-02-09T20:30:37Z", "sequence_num": 0, '
        '"events": [{"subscriptions": {"ticker": ["BTC-USD"], "heartbeats": []}}]}'
    )
    s.handle(ack.encode(), RECV)
    assert link.subscribed_calls == 0


def test_an_error_message_is_dropped_as_an_error_reply_and_reported() -> None:
    s, link = session()
    out = s.handle(b'{"type": "error", "message": "Failed to subscribe"}', RECV)
    assert (out, link.refusals) == ("error_reply", ["coinbase error: Failed to subscribe"])


def test_one_bad_ticker_is_counted_while_the_good_one_passes() -> None:
    s, link = session()
    raw = TICKER.replace(
        '"events": [',
        '"events": [{"type": "update", "tickers": [{"type": '
        '"ticker", "product_id": "ETH-USD", "price": "x"}]}, ',
    )
    assert (s.handle(raw.encode(), RECV), link.drops) == ([EXPECTED], ["bad_field"])


def test_coinbase_empty_tickers_are_skipped_as_such() -> None:
    s, link = session()
    raw = TICKER.replace(
        '"product_id": "BTC-USD", "price": "21932.98"', '"product_id": "", "price": ""'
    )
    assert (s.handle(raw.encode(), RECV), link.drops) == ("empty_ticker", [])


def test_products_read_an_usd_ticker_for_a_configured_usdc_market() -> None:
    assert products(("SOL/USDC",))["SOL-USD"] == Market("SOL/USD", "SOL", "USD")


def test_malformed_messages_give_their_drop_reason() -> None:
    s, _ = session()
    bad_price = TICKER.replace('"21932.98"', '"-1"')
    unknown = TICKER.replace("BTC-USD", "DOGE-USD")
    got = [s.handle(raw, RECV) for raw in (b"not json", b"[1]", bad_price.encode())]
    s2, _ = session()
    assert (*got, s2.handle(unknown.encode(), RECV)) == (
        "malformed_json",
        "unknown_shape",
        "bad_field",
        "unknown_symbol",
    )
