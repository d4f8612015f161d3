"""Kraken WebSocket v2 message handling, on the samples of the reference doc."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from streams.feeds.interface import FeedConfig
from streams.feeds.kraken import KrakenProtocol, KrakenSession, pairs
from streams.feeds.session import Overlap, SessionEnded
from streams.feeds.symbols import Market
from streams.ticks import Tick
from tests.unit.recording_link import RecordingLink

RECV = 1_695_628_177_800_000_000

# /work/shared/reference/exchange-feeds.md, verbatim.
STATUS = (
    '{"channel": "status", "type": "update", "data": [{"api_version": "v2", '
    '"connection_id": 123, "system": "online", "version": "2.0.x"}]}'
)
SUBSCRIBED = (
    '{"method": "subscribe", "result": {"channel": "ticker", "snapshot": true, "symbol": '
    '"BTC/USD"}, "success": true, "time_in": "...", "time_out": "...", "req_id": 1}'
)
TICKER = (
    '{"channel": "ticker", "type": "snapshot", "data": [{"symbol": "BTC/USD", "bid": 26500.1, '
    '"bid_qty": 0.5, "ask": 26500.2, "ask_qty": 1.2, "last": 26500.1, "volume": 1234.5, '
    '"vwap": 26400.0, "low": 26000.0, "high": 27000.0, "change": 100.0, "change_pct": 0.38}]}'
)
TRADE = (
    '{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "buy", '
    '"price": 26500.1, "qty": 0.01, "ord_type": "market", "trade_id": 4665906, '
    '"timestamp": "2023-09-25T07:49:37.708706Z"}]}'
)


def session(*symbols: str, channel: str = "") -> tuple[KrakenSession, RecordingLink]:
    config = FeedConfig("kraken", symbols or ("BTC/USD",), channel=channel)
    link = RecordingLink()
    return KrakenProtocol(config).session(link), link


def test_the_reference_ticker_becomes_a_tick_stamped_on_receipt() -> None:
    s, _ = session()
    tick = Tick(
        "kraken", "BTC/USD", "BTC", "USD", 26500.1, RECV // 10**6, RECV, 26500.1, 26500.2, "26500.1"
    )
    assert s.handle(TICKER.encode(), RECV) == [tick]


def test_the_reference_trade_becomes_a_tick_at_trade_time() -> None:
    s, _ = session(channel="trade")
    tick = Tick(
        "kraken", "BTC/USD", "BTC", "USD", 26500.1, 1695628177708, RECV, price_exact="26500.1"
    )
    assert s.handle(TRADE.encode(), RECV) == [tick]


def test_status_and_heartbeat_pass_silently() -> None:
    s, link = session()
    out = [s.handle(raw, RECV) for raw in (STATUS.encode(), b'{"channel": "heartbeat"}')]
    assert (out, link.drops) == ([None, None], [])


def test_the_ack_of_every_symbol_means_subscribed() -> None:
    s, link = session("BTC/USD", "ETH/USD")
    s.handle(SUBSCRIBED.encode(), RECV)
    first = link.subscribed_calls
    s.handle(SUBSCRIBED.replace("BTC/USD", "ETH/USD").encode(), RECV)
    assert (first, link.subscribed_calls) == (0, 1)


def test_a_refused_symbol_is_an_error_reply_and_is_reported() -> None:
    s, link = session("BTC/USD", "ETH/USD")
    refusal = (
        '{"error": "Currency pair not supported ETH/USD", "method": "subscribe", "req_id": 1, '
        '"success": false, "symbol": "ETH/USD", "time_in": "...", "time_out": "..."}'
    )
    s.handle(SUBSCRIBED.encode(), RECV)
    out = s.handle(refusal.encode(), RECV)
    assert (out, link.subscribed_calls, len(link.refusals)) == ("error_reply", 1, 1)


def test_xbt_is_read_as_btc() -> None:
    table = pairs(("XBT/USD",))
    btc = Market("BTC/USD", "BTC", "USD")
    assert (table["BTC/USD"], table["XBT/USD"], table["XXBT/ZUSD"]) == (btc, btc, btc)
    assert {m.symbol for m in table.values()} == {"BTC/USD"}


def test_xdg_is_read_as_doge_in_configuration_and_on_the_wire() -> None:
    """Kraken's older code for Dogecoin (ccxt's commonCurrencies for kraken: XDG -> DOGE)."""
    protocol = KrakenProtocol(FeedConfig("kraken", ("XDG/USD",)))
    assert protocol.subscribe_symbols == ["DOGE/USD"]
    s, _ = session("DOGE/USD")
    raw = TICKER.replace('"BTC/USD"', '"XDG/USD"')
    out = s.handle(raw.encode(), RECV)
    assert isinstance(out, list) and [t.symbol for t in out] == ["DOGE/USD"]


def test_a_trade_seen_on_the_other_connection_of_a_rollover_is_not_passed_twice() -> None:
    overlap = Overlap(old=2, new=1)  # this session's link is serial 1: the new connection
    overlap.switch()
    s, link = session(channel="trade")
    link.overlap = overlap
    first = s.handle(TRADE.encode(), RECV)
    assert (len(first or []), s.handle(TRADE.encode(), RECV)) == (1, [])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json", "malformed_json"),
        ("[1, 2]", "unknown_shape"),
        ('{"hello": "world"}', "unknown_shape"),
        (TICKER.replace('26500.1, "volume"', '[26500.1], "volume"'), "bad_field"),
        (TICKER.replace('"last": 26500.1', '"last": -5'), "bad_field"),
        (TICKER.replace('"symbol": "BTC/USD"', '"symbol": "DOGE/USD"'), "unknown_symbol"),
        ('{"method": "cancel_order", "success": false, "error": "nope"}', "error_reply"),
    ],
)
def test_malformed_messages_give_their_drop_reason(raw: str, reason: str) -> None:
    s, _ = session()
    assert s.handle(raw.encode(), RECV) == reason


class Socket:
    """Collects what a session sends."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, data: bytes, text: bool = False) -> None:
        self.sent.put_nowait(data)


async def test_an_unanswered_ping_ends_the_connection_as_a_stall() -> None:
    config = FeedConfig("kraken", ("BTC/USD",), ping_interval_s=0.01)
    s = KrakenProtocol(config).session(RecordingLink())
    socket = Socket()
    with pytest.raises(SessionEnded) as ended:
        await asyncio.wait_for(s.keepalive(socket), 1.0)  # type: ignore[arg-type]
    assert (ended.value.stall, socket.sent.get_nowait()) == (
        True,
        b'{"method":"ping","req_id":1}',
    )


async def test_answered_pings_keep_the_connection() -> None:
    config = FeedConfig("kraken", ("BTC/USD",), ping_interval_s=0.01)
    s = KrakenProtocol(config).session(RecordingLink())
    socket = Socket()
    task = asyncio.create_task(s.keepalive(socket))  # type: ignore[arg-type]
    for _ in range(4):
        ping = msgspec.json.decode(await asyncio.wait_for(socket.sent.get(), 1.0))
        s.handle(b'{"method": "pong", "req_id": %d}' % ping["req_id"], RECV)
    alive = not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert alive
