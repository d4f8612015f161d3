"""Replay files: tick JSON lines, read in file order, in event time.

Line format (ARCHITECTURE.md): `{"venue": "binance", "symbol": "BTC/USDT", "price": 43000.5,
"ts": "2026-03-01T12:00:00.123Z"}`; `ts` may also be epoch milliseconds, `price` a
number or a decimal string, and `bid`/`ask` are optional. A bad line is reported with
its file and line number, counted, and skipped: it never stops the replay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from streams.errors import TickFormatError
from streams.metrics import FEED_DROPPED, FEED_TICKS
from streams.ticks import Tick, parse_ts, split_symbol

log = logging.getLogger(__name__)


class _Line(msgspec.Struct):
    venue: str
    symbol: str
    price: float | str
    ts: int | float | str
    bid: float | str | None = None
    ask: float | str | None = None


_decoder = msgspec.json.Decoder(_Line)


@dataclass
class ReplayStats:
    """What a replay read: good ticks and rejected lines (with their messages)."""

    ticks: int = 0
    rejected: list[str] = field(default_factory=list)


def parse_line(raw: bytes | str) -> Tick:
    """One replay line -> Tick; `recv_ns` is the event time, so replays are deterministic."""
    try:
        line = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise TickFormatError(str(exc)) from exc
    base, quote = split_symbol(line.symbol)
    price = _number("price", line.price)
    if not math.isfinite(price) or price <= 0:
        raise TickFormatError(f"price {line.price!r} must be a positive number")
    ts_ms = parse_ts(line.ts)
    bid = None if line.bid is None else _number("bid", line.bid)
    ask = None if line.ask is None else _number("ask", line.ask)
    return Tick(
        line.venue, f"{base}/{quote}", base, quote, price, ts_ms, ts_ms * 1_000_000, bid, ask
    )


def _number(name: str, value: float | str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise TickFormatError(f"{name} {value!r} is not a number") from exc


def read_ticks(path: str | Path, stats: ReplayStats | None = None) -> Iterator[Tick]:
    """Yield the file's ticks in order, skipping (and recording) bad lines."""
    file = Path(path)
    stats = stats if stats is not None else ReplayStats()
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                tick = parse_line(raw)
            except TickFormatError as exc:
                message = f"{file}:{number}: {exc}"
                stats.rejected.append(message)
                FEED_DROPPED.labels("replay", "bad_line").inc()
                log.warning(
                    "replay line rejected: %s", message, extra={"file": str(file), "line": number}
                )
                continue
            stats.ticks += 1
            FEED_TICKS.labels("replay").inc()
            yield tick
