"""Replay files: tick JSON lines, read in file order, in event time.

Line format (ARCHITECTURE.md): `{"venue": "binance", "symbol": "BTC/USDT", "price": 43000.5,
"ts": "2026-03-01T12:00:00.123Z"}`; `ts` may also be epoch milliseconds, `price` a
number or a decimal string, and `bid`/`ask` are optional. A bad line is reported with
its file and line number, counted, and skipped: it never stops the replay.

Bad lines include times that cannot be right: outside 2009..2099 (epoch seconds or
microseconds given for milliseconds, say so), and a line stamped more than `ahead_ms`
after both the line before it and most of the lines after it (a clock error). Taken as
is, such a tick would move the asset's clock ahead, and every later tick of the asset
would look stale: the asset would go blind for the rest of the replay.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from streams.errors import TickFormatError
from streams.metrics import FEED_DROPPED, FEED_TICKS
from streams.ticks import Tick, format_ts_ms, parse_ts, split_symbol

log = logging.getLogger(__name__)


class _Line(msgspec.Struct):
    venue: str
    symbol: str
    price: float | str
    ts: int | float | str
    bid: float | str | None = None
    ask: float | str | None = None


_decoder = msgspec.json.Decoder(_Line)

EARLIEST_MS = 1_230_940_800_000  # 2009-01-03, the first bitcoin block
LATEST_MS = 4_102_444_800_000  # 2100-01-01
AHEAD_MS = 60_000  # default: a line this far ahead of the lines around it is a clock error
LOOKAHEAD = 16  # lines after a suspect line whose median time it is judged against
LOGGED_REJECTS = 20  # bad lines logged one by one; the rest are counted in the summary


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
    ts_ms = check_ts(parse_ts(line.ts), line.ts)
    bid = None if line.bid is None else _number("bid", line.bid)
    ask = None if line.ask is None else _number("ask", line.ask)
    return Tick(
        line.venue, f"{base}/{quote}", base, quote, price, ts_ms, ts_ms * 1_000_000, bid, ask
    )


def check_ts(ts_ms: int, given: object) -> int:
    """`ts_ms` when it is a time a tick can have (2009..2099), else TickFormatError naming
    the likely mistake (epoch seconds or microseconds where milliseconds are expected)."""
    if EARLIEST_MS <= ts_ms < LATEST_MS:
        return ts_ms
    hint = "outside 2009..2099"
    if EARLIEST_MS <= ts_ms * 1000 < LATEST_MS:
        hint = "epoch seconds? ts is epoch milliseconds or ISO 8601"
    elif EARLIEST_MS <= ts_ms // 1000 < LATEST_MS:
        hint = "epoch microseconds? ts is epoch milliseconds or ISO 8601"
    elif EARLIEST_MS <= ts_ms // 1_000_000 < LATEST_MS:
        hint = "epoch nanoseconds? ts is epoch milliseconds or ISO 8601"
    raise TickFormatError(f"ts {given!r} is not a tick time ({hint})")


def _number(name: str, value: float | str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise TickFormatError(f"{name} {value!r} is not a number") from exc


def read_ticks(
    path: str | Path, stats: ReplayStats | None = None, *, ahead_ms: int = AHEAD_MS
) -> Iterator[Tick]:
    """Yield the file's ticks in order, skipping (and recording) bad lines.

    A line more than `ahead_ms` later than the last good line and than the median of
    the `LOOKAHEAD` lines after it is rejected as a clock error (see the module doc).
    """
    file = Path(path)
    stats = stats if stats is not None else ReplayStats()
    window: deque[tuple[int, Tick]] = deque()
    last_ms: int | None = None
    for number, tick in _parsed(file, stats):
        window.append((number, tick))
        if len(window) <= LOOKAHEAD:
            continue
        held, last_ms = _judge(file, stats, window, last_ms, ahead_ms)
        if held is not None:
            yield held
    while window:
        held, last_ms = _judge(file, stats, window, last_ms, ahead_ms)
        if held is not None:
            yield held


def _judge(
    file: Path,
    stats: ReplayStats,
    window: deque[tuple[int, Tick]],
    last_ms: int | None,
    ahead_ms: int,
) -> tuple[Tick | None, int | None]:
    """The first tick of `window` if its time fits the lines around it; the new last time."""
    number, tick = window.popleft()
    after = [t.ts_ms for _, t in window]
    around = statistics.median_low(after) if after else tick.ts_ms
    if (last_ms is None or tick.ts_ms > last_ms + ahead_ms) and tick.ts_ms > around + ahead_ms:
        _reject(
            file,
            number,
            stats,
            f"ts {format_ts_ms(tick.ts_ms)} is ahead of the lines after it (around "
            f"{format_ts_ms(around)}): a clock error? Skipped: the asset would look stale after it",
            "ahead",
        )
        return None, last_ms
    stats.ticks += 1
    FEED_TICKS.labels("replay").inc()
    return tick, tick.ts_ms


def _parsed(file: Path, stats: ReplayStats) -> Iterator[tuple[int, Tick]]:
    """(line number, tick) of each well-formed line; bad ones are recorded and skipped."""
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, parse_line(raw)
            except TickFormatError as exc:
                _reject(file, number, stats, str(exc), "bad_line")


def _reject(file: Path, number: int, stats: ReplayStats, why: str, reason: str) -> None:
    """Record a bad line; the first `LOGGED_REJECTS` are logged with file:line, the rest
    only counted (a wrong file given as --ticks is thousands of bad lines)."""
    message = f"{file}:{number}: {why}"
    stats.rejected.append(message)
    FEED_DROPPED.labels("replay", reason).inc()
    if len(stats.rejected) <= LOGGED_REJECTS:
        log.warning("replay line rejected: %s", message, extra={"file": str(file), "line": number})
    elif len(stats.rejected) == LOGGED_REJECTS + 1:
        log.warning(
            "more rejected lines of %s are counted, not logged (the summary says how many)",
            file,
            extra={"file": str(file), "line": number},
        )
