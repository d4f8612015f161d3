"""Binance message parsing (samples from the reference doc)."""

from __future__ import annotations

import msgspec
import pytest

from streams.errors import FeedError
from streams.feeds.binance_wire import (
    Reply,
    ReplyError,
    ServerShutdown,
    markets,
    parse_message,
)
from streams.feeds.symbols import Market
from streams.ticks import Tick

SYMBOLS = markets(["BTC/USDT", "BNB/BTC"])
RECV = 1_672_515_782_200_000_000

# The trade event of /work/shared/reference/exchange-feeds.md, verbatim.
TRADE = (
    '{"e": "trade", "E": 1672515782136, "s": "BTCUSDT", "t": 12345, "p": "43000.01", '
    '"q": "0.0012", "T": 1672515782134, "m": true, "M": true}'
)
EXPECTED = Tick(
    "binance", "BTC/USDT", "BTC", "USDT", 43000.01, 1672515782134, RECV, price_exact="43000.01"
)


def envelope(data: str, stream: str = "btcusdt@trade") -> str:
    return f'{{"stream": "{stream}", "data": {data}}}'


def one_tick(raw: str, recv_ns: int | None = RECV) -> Tick:
    out = parse_message(raw, SYMBOLS, recv_ns)
    assert isinstance(out, list) and len(out) == 1, out
    return out[0]


def test_combined_envelope_trade_becomes_a_tick() -> None:
    assert parse_message(envelope(TRADE).encode(), SYMBOLS, RECV) == [EXPECTED]


def test_raw_stream_trade_becomes_the_same_tick() -> None:
    assert parse_message(TRADE, SYMBOLS, RECV) == [EXPECTED]


def test_trade_time_falls_back_to_event_time() -> None:
    data = '{"e": "trade", "E": 1672515782136, "s": "BTCUSDT", "p": "43000.01"}'
    assert one_tick(envelope(data)).ts_ms == 1672515782136


def test_agg_trade_from_the_binance_docs_becomes_a_tick() -> None:
    data = (
        '{"e": "aggTrade", "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001", '
        '"q": "100", "f": 100, "l": 105, "T": 1672515782136, "m": true, "M": true}'
    )
    ticks = parse_message(envelope(data, "bnbbtc@aggTrade"), SYMBOLS, RECV)
    expected = Tick("binance", "BNB/BTC", "BNB", "BTC", 0.001, 1672515782136, RECV)
    assert ticks == [msgspec.structs.replace(expected, price_exact="0.001")]


def test_recv_time_defaults_to_now() -> None:
    assert one_tick(TRADE, recv_ns=None).recv_ns > RECV


def test_subscribe_ack_is_a_reply() -> None:
    assert parse_message('{"result": null, "id": 1}', SYMBOLS) == Reply(id=1)


def test_error_reply_carries_code_and_message() -> None:
    reply = parse_message('{"error": {"code": 2, "msg": "Invalid request"}, "id": 7}', SYMBOLS)
    assert reply == Reply(id=7, error=ReplyError(code=2, msg="Invalid request"))


def test_server_shutdown_notice_is_recognized() -> None:
    out = parse_message('{"e": "serverShutdown", "E": 1672515782136}', SYMBOLS)
    assert out == ServerShutdown(E=1672515782136)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "malformed_json"),
        ('{"stream": "btcusdt@trade", "data": {"e": "trade"', "malformed_json"),
        ("[1, 2]", "unknown_shape"),
        ('{"hello": "world"}', "unknown_shape"),
        # The book ticker and mini ticker samples of the reference doc: not trades.
        (
            '{"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", '
            '"a": "25.36520000", "A": "40.66000000"}',
            "unknown_shape",
        ),
        (
            envelope(
                '{"e": "24hrMiniTicker", "E": 1672515782136, "s": "BTCUSDT", "c": "43000.01", '
                '"o": "42000.00", "h": "43500.00", "l": "41800.00", "v": "1234.5", "q": "5300"}',
                "btcusdt@miniTicker",
            ),
            "unknown_shape",
        ),
        (envelope('{"e": "trade", "s": "BTCUSDT", "T": 1672515782134}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": 43000.01, "T": 1}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": "43k", "T": 1}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": "-1", "T": 1}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": "NaN", "T": 1}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": "1.5"}'), "bad_field"),
        (envelope('{"e": "trade", "s": "BTCUSDT", "p": "1.5", "T": "soon"}'), "bad_field"),
        (envelope('{"e": "trade", "s": "DOGEUSDT", "p": "0.15", "T": 1}'), "unknown_symbol"),
        ('{"result": null}', "unknown_shape"),
    ],
)
def test_malformed_messages_give_their_drop_reason(raw: str, reason: str) -> None:
    assert parse_message(raw, SYMBOLS, RECV) == reason


def test_markets_map_binance_ids_to_unified_symbols() -> None:
    assert markets(["btc/usdt"]) == {"BTCUSDT": Market("BTC/USDT", "BTC", "USDT")}


def test_markets_refuse_symbols_that_clash_on_binance() -> None:
    with pytest.raises(FeedError, match="both"):
        markets(["AB/CD", "ABC/D"])


def test_markets_refuse_a_symbol_without_quote() -> None:
    with pytest.raises(FeedError, match="BASE/QUOTE"):
        markets(["BTCUSDT"])
