"""Binance spot market-data messages as the feed reads them (no I/O here).

Shapes (see /work/shared/reference/exchange-feeds.md): the combined-stream envelope
`{"stream": "btcusdt@trade", "data": {...}}`, trade and aggTrade events (prices are
strings, `T` trade time and `E` event time in ms, `t`/`a` the trade id), replies
`{"result": null, "id": 1}` / `{"error": {"code": 2, "msg": "..."}, "id": 1}`, and the
`serverShutdown` notice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from streams.feeds.symbols import Market, market_table
from streams.ticks import Tick, now_ns

__all__ = [
    "VENUE",
    "DropReason",
    "Reply",
    "ReplyError",
    "ServerShutdown",
    "decode_message",
    "markets",
    "parse_message",
]

VENUE: Final = "binance"

DropReason = Literal[
    "malformed_json", "unknown_shape", "bad_field", "unknown_symbol", "error_reply"
]
_TRADE_EVENTS = frozenset({"trade", "aggTrade"})


def markets(symbols: Sequence[str]) -> dict[str, Market]:
    """Binance symbol -> Market for the unified `symbols`; FeedError on bad or clashing ones."""
    return market_table(VENUE, symbols, lambda base, quote: base + quote)


# Only the fields a Tick needs are declared; msgspec skips the others.
class _Trade(msgspec.Struct, gc=False):
    e: str
    s: str
    p: str
    E: int = 0  # event time, ms
    T: int = 0  # trade time, ms
    t: int = 0  # trade id (trade)
    a: int = 0  # aggregate trade id (aggTrade)


class _Envelope(msgspec.Struct, gc=False):
    stream: str
    data: _Trade


class ReplyError(msgspec.Struct):
    """Binance's error object: `{"code": 2, "msg": "Invalid request: ..."}`."""

    code: int = -1
    msg: str = ""


class Reply(msgspec.Struct):
    """An answer to a request: `{"result": null, "id": 1}` or `{"error": {...}, "id": 1}`."""

    id: int | str | None = None
    result: Any = None
    error: ReplyError | None = None


class ServerShutdown(msgspec.Struct):
    """`{"e": "serverShutdown", ...}`: the venue will close this connection soon."""

    E: int = 0


_envelope = msgspec.json.Decoder(_Envelope)

Decoded = tuple[Tick, int] | Reply | ServerShutdown | DropReason


def parse_message(
    raw: bytes | str, symbols: Mapping[str, Market], recv_ns: int | None = None
) -> list[Tick] | Reply | ServerShutdown | DropReason:
    """One websocket message -> its Ticks, a reply, a shutdown notice, or why to drop it.

    Accepts the combined envelope and, for robustness, a bare event (raw `/ws` streams).
    `recv_ns` defaults to now.
    """
    out = decode_message(raw, symbols, recv_ns)
    return [out[0]] if type(out) is tuple else out  # type: ignore[return-value]


def decode_message(
    raw: bytes | str,
    symbols: Mapping[str, Market],
    recv_ns: int | None = None,
    time_divisor: int = 1,
) -> Decoded:
    """Like `parse_message`, but a trade comes back as (Tick, trade id) for rollover dedupe.

    `time_divisor` turns the venue's times into ms: 1000 with `timeUnit=MICROSECOND`.
    """
    try:
        data = _envelope.decode(raw).data
    except msgspec.ValidationError:
        return _decode_other(raw, symbols, recv_ns, time_divisor)
    except msgspec.DecodeError:
        return "malformed_json"
    if data.e not in _TRADE_EVENTS:
        return "unknown_shape"
    return _tick(data, symbols, recv_ns, time_divisor)


def _decode_other(
    raw: bytes | str, symbols: Mapping[str, Market], recv_ns: int | None, time_divisor: int
) -> Decoded:
    """The slow path: anything that is valid JSON but not an enveloped trade."""
    message = msgspec.json.decode(raw)
    if not isinstance(message, dict):
        return "unknown_shape"
    data = message.get("data") if "stream" in message else message
    if not isinstance(data, dict):
        return "unknown_shape"
    event = data.get("e")
    if event is None:
        if "id" in message and ("result" in message or "error" in message):
            try:
                return msgspec.convert(message, Reply)
            except msgspec.ValidationError:
                return "unknown_shape"
        return "unknown_shape"
    if event == "serverShutdown":
        return ServerShutdown(E=data.get("E", 0) if isinstance(data.get("E"), int) else 0)
    if event not in _TRADE_EVENTS:
        return "unknown_shape"
    try:
        trade = msgspec.convert(data, _Trade)
    except msgspec.ValidationError:
        return "bad_field"
    return _tick(trade, symbols, recv_ns, time_divisor)


def _tick(
    trade: _Trade, symbols: Mapping[str, Market], recv_ns: int | None, time_divisor: int
) -> Decoded:
    market = symbols.get(trade.s)
    if market is None:
        return "unknown_symbol"
    try:
        price = float(trade.p)
    except ValueError:
        return "bad_field"
    ts_ms = (trade.T or trade.E) // time_divisor
    if not (price > 0.0 and math.isfinite(price)) or ts_ms <= 0:
        return "bad_field"
    recv = now_ns() if recv_ns is None else recv_ns
    m = market
    tick = Tick(VENUE, m.symbol, m.base, m.quote, price, ts_ms, recv, None, None, trade.p)
    return tick, trade.t or trade.a
