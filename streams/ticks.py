"""The Tick: one normalized price observation from one venue, and its wire codec.

Every feed (native websocket, ccxt, replay, simulator) produces Ticks; the bus carries
them encoded as compact JSON, keyed by base asset so one asset's ticks stay ordered
within a partition.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from streams.errors import TickFormatError

__all__ = [
    "Tick",
    "decode_tick",
    "encode_tick",
    "format_ts_ms",
    "now_ns",
    "parse_ts",
    "split_symbol",
    "tick_key",
]


class Tick(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """A price for `symbol` (unified `BASE/QUOTE`) on `venue` at exchange time `ts_ms`.

    `recv_ns` is the local wall clock (ns since epoch) when the message arrived; the
    tick-to-alert latency is measured from it. `price` (float64) is for detection and
    metrics; `price_exact` is the venue's price exactly as it sent it, a decimal string
    parsed at the edge without passing through float (Binance and Coinbase send strings,
    Kraken JSON numbers read as decimals), for anything that becomes money: use
    `exact_price()`. It is empty where the source had none (ccxt's unified floats, older
    bus messages). `snapshot` marks a past trade replayed by a subscription snapshot (the
    newest one, for the price board), never a live print. On the bus, fields at their
    default (no bid/ask, no exact digits, not a snapshot) are left out.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    price: float
    ts_ms: int
    recv_ns: int
    bid: float | None = None
    ask: float | None = None
    price_exact: str = ""
    snapshot: bool = False

    def exact_price(self) -> Decimal:
        """The price as an exact Decimal: the venue's own digits when known, else the float's
        shortest repr (what a float-only source such as ccxt can give)."""
        return Decimal(self.price_exact) if self.price_exact else Decimal(repr(self.price))


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Tick)


def encode_tick(tick: Tick) -> bytes:
    """The bus wire format: one JSON object."""
    return _encoder.encode(tick)


def decode_tick(data: bytes) -> Tick:
    """Decode the bus wire format; raises TickFormatError naming what is wrong."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise TickFormatError(f"undecodable tick on the bus: {exc}") from exc


def tick_key(tick: Tick) -> bytes:
    """The bus key: the base asset, so an asset's ticks share a partition."""
    return tick.base.encode()


def now_ns() -> int:
    """Wall-clock receive time in ns (what `Tick.recv_ns` holds)."""
    return time.time_ns()


def split_symbol(symbol: str) -> tuple[str, str]:
    """`BTC/USDT` -> (`BTC`, `USDT`); raises TickFormatError on anything else."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise TickFormatError(f"symbol {symbol!r} is not of the form BASE/QUOTE (e.g. BTC/USDT)")
    return base.upper(), quote.upper()


def parse_ts(value: object) -> int:
    """An exchange timestamp (epoch ms int/float, digit string, or ISO 8601) -> epoch ms.

    ISO strings without an offset are taken as UTC; a trailing `Z` is accepted.
    """
    if isinstance(value, bool):
        raise TickFormatError(f"timestamp {value!r} is a boolean, not a time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise TickFormatError(
                f"timestamp {value!r} is neither epoch milliseconds nor ISO 8601"
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    raise TickFormatError(f"timestamp {value!r} is neither epoch milliseconds nor ISO 8601")


def format_ts_ms(ts_ms: int) -> str:
    """Epoch ms -> ISO 8601 UTC with milliseconds, e.g. `2026-03-01T12:00:00.123Z`."""
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
