"""Loading tax lots from a portfolio CSV into the lot frame the book is built on.

Contract (ARCHITECTURE.md): `lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at`,
cost basis being the lot's total in USD with fees; acquired_at an ISO 8601 date or
datetime, UTC when no offset is given. Every bad row is reported as
`file:line: field: what is wrong`, and any bad row stops the load: a portfolio that is
half loaded would make every alert after it wrong.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from monitor.errors import PortfolioError

COLUMNS = ("lot_id", "account", "wallet", "asset", "quantity", "cost_basis_usd", "acquired_at")
MONEY = pl.Decimal(38, 18)
LOT_SCHEMA: dict[str, pl.DataType] = {
    "lot_id": pl.String(),
    "account": pl.String(),
    "wallet": pl.String(),
    "asset": pl.String(),
    "quantity": MONEY,
    "cost_basis_usd": MONEY,
    "acquired_at": pl.Datetime("us", "UTC"),
}
MAX_REPORTED = 20  # errors listed before "... and N more"
STEP_ROWS = 5_000  # rows between two progress reports (on_step)


def empty_lots() -> pl.DataFrame:
    """A lot frame with no rows and the canonical schema."""
    return pl.DataFrame(schema=LOT_SCHEMA)


def load_portfolio(
    path: str | Path,
    on_step: Callable[[str, int, int], None] | None = None,
    *,
    allow_future: bool = False,
) -> pl.DataFrame:
    """Read and validate a portfolio CSV; raises PortfolioError listing every bad row.

    `on_step("reading FILE", line, lines)` is called every few thousand lines (a
    progress bar for a large file). A lot acquired after now is a bad row unless
    `allow_future` (a buy recorded ahead: it joins the book at its acquisition time,
    monitor/holdings.py)."""
    file = Path(path)
    now = None if allow_future else datetime.now(UTC)
    try:
        total = 0
        if on_step is not None:
            with file.open("rb") as raw:
                total = max(0, sum(1 for _ in raw) - 1)
        with file.open(newline="", encoding="utf-8-sig") as handle:
            return parse_portfolio(handle, str(file), on_step, total, now=now)
    except FileNotFoundError as exc:
        raise PortfolioError(f"{file}: portfolio file not found") from exc
    except UnicodeDecodeError as exc:
        raise PortfolioError(not_utf8(file)) from exc
    except OSError as exc:  # a directory, no permission
        raise PortfolioError(f"{file}: cannot read the portfolio ({exc.strerror or exc})") from exc


def not_utf8(file: Path) -> str:
    """Where a portfolio file stops being UTF-8 text, and what to do (`file:line: ...`)."""
    data = file.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:200]:
        return (
            f"{file}:1: encoding: the file is UTF-16 (Excel's 'Unicode text'); "
            "save it as 'CSV UTF-8' and import that"
        )
    try:
        data.decode("utf-8")
        offset = len(data)
    except UnicodeDecodeError as exc:
        offset = exc.start
    line = data.count(b"\n", 0, offset) + 1
    return (
        f"{file}:{line}: encoding: byte 0x{data[offset]:02x} is not UTF-8 (a Latin-1 or "
        "Windows-1252 export?); save the file as 'CSV UTF-8' and import that"
    )


def parse_portfolio(
    lines: Iterable[str],
    source: str,
    on_step: Callable[[str, int, int], None] | None = None,
    total: int = 0,
    *,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Parse CSV text lines (header first) from `source` into the lot frame; with `now`,
    a lot acquired after it is a bad row."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise PortfolioError(f"{source}:1: header: the file is empty; expected {','.join(COLUMNS)}")
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    unknown = [c for c in names if c not in COLUMNS]
    if missing or unknown:
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise PortfolioError(f"{source}:1: header: {detail}; expected {','.join(COLUMNS)}")
    index = {name: names.index(name) for name in COLUMNS}
    columns: dict[str, list[object]] = {c: [] for c in COLUMNS}
    errors: list[str] = []
    seen: dict[str, int] = {}
    phase = f"reading {source}"
    for row in reader:
        line = reader.line_num
        if on_step is not None and line % STEP_ROWS == 0:
            on_step(phase, line - 1, total)
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            errors.append(
                f"{source}:{line}: row: has {len(row)} fields, the header has {len(names)}"
            )
            continue
        values, row_errors = _parse_row(row, index)
        acquired = values.get("acquired_at")
        if now is not None and isinstance(acquired, datetime) and acquired > now:
            row_errors.append(
                (
                    "acquired_at",
                    f"{acquired.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M}Z): "
                    "check the date, or import with --allow-future (the lot joins the book "
                    "at that time)",
                )
            )
        errors.extend(f"{source}:{line}: {field}: {msg}" for field, msg in row_errors)
        lot_id = values.get("lot_id")
        if isinstance(lot_id, str) and lot_id:
            if lot_id in seen:
                errors.append(
                    f"{source}:{line}: lot_id: {lot_id!r} already used on line {seen[lot_id]}"
                )
            seen.setdefault(lot_id, line)
        if not row_errors:
            for name in COLUMNS:
                columns[name].append(values[name])
    if on_step is not None:
        on_step(phase, total, total)
    if errors:
        shown = errors[:MAX_REPORTED]
        more = len(errors) - len(shown)
        tail = [f"... and {more} more"] if more else []
        raise PortfolioError("\n".join([f"{source}: {len(errors)} bad row(s)", *shown, *tail]))
    return pl.DataFrame(columns, schema=LOT_SCHEMA)


def _parse_row(
    row: list[str], index: dict[str, int]
) -> tuple[dict[str, object], list[tuple[str, str]]]:
    values: dict[str, object] = {}
    errors: list[tuple[str, str]] = []
    for name in ("lot_id", "account", "wallet", "asset"):
        text = row[index[name]].strip()
        if not text:
            errors.append((name, "is empty"))
        values[name] = text.upper() if name == "asset" else text
    for name, allow_zero in (("quantity", False), ("cost_basis_usd", True)):
        text = row[index[name]].strip()
        try:
            amount = parse_decimal(text)
        except ValueError as exc:
            errors.append((name, str(exc)))
            continue
        if amount < 0 or (amount == 0 and not allow_zero):
            errors.append((name, f"{text!r} must be {'at least 0' if allow_zero else 'above 0'}"))
        values[name] = amount
    text = row[index["acquired_at"]].strip()
    try:
        values["acquired_at"] = parse_acquired_at(text)
    except ValueError as exc:
        errors.append(("acquired_at", str(exc)))
    return values, errors


def parse_decimal(text: str) -> Decimal:
    """A plain decimal number (no exponent, no thousands separator) as an exact Decimal."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not amount.is_finite() or "e" in text.lower():
        raise ValueError(f"{text!r} is not a plain decimal number (write e.g. 0.0001)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -18:
        raise ValueError(f"{text!r} has more than 18 decimal places")
    if abs(amount) >= Decimal(10) ** 20:
        raise ValueError(f"{text!r} is too large")
    return amount


def parse_acquired_at(text: str) -> datetime:
    """ISO 8601 date or datetime -> aware UTC datetime (naive values are UTC)."""
    if not text:
        raise ValueError("is empty; expected an ISO 8601 date or datetime, e.g. 2025-03-01")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or datetime "
            "(e.g. 2025-03-01 or 2025-03-01T14:30:00Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
