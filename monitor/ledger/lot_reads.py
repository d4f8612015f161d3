"""The open-lot frame read back from the ledger, in bulk (the start of every run).

See `open_lots`: one joined text per lot, split and converted by polars, with a
row-by-row fallback that gives the same frame.
"""

from __future__ import annotations

import sqlite3

import polars as pl

from monitor.ledger.database import undec
from monitor.ledger.lots import parse_time
from monitor.portfolio import LOT_SCHEMA

READ_CHUNK = 100_000  # open lots converted at a time (bounds the Python objects alive)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"  # migrations.iso's text, in polars' (chrono) notation


def open_lots(conn: sqlite3.Connection) -> pl.DataFrame:
    """The open lots (what is still held of each) as the book's lot frame, in ledger order.

    Bulk read: SQLite joins each lot's seven fields into one text (one Python object a
    lot instead of seven), `READ_CHUNK` lots at a time; polars splits them and converts
    the exact decimal text to Decimal(38, 18) and the ledger's time text to UTC
    datetimes. A chunk polars cannot convert strictly (a separator inside a name, text
    `iso`/`dec` never write) is read again field by field and converted like before, so
    the frame is the same either way. The table is scanned in rowid order (`NOT
    INDEXED`): through the status index SQLite would sort the rows back into rowid order.
    """
    cursor = conn.execute(f"SELECT rowid, {_JOINED} FROM lots NOT INDEXED {_OPEN}")
    chunks: list[pl.DataFrame] = []
    while rows := cursor.fetchmany(READ_CHUNK):
        chunk = _split_chunk([line for _, line in rows])
        if chunk is None:
            chunk = _chunk_by_field(conn, rows[0][0], rows[-1][0])
        chunks.append(chunk)
    if not chunks:
        return pl.DataFrame(schema=LOT_SCHEMA)
    return pl.concat(chunks, rechunk=True) if len(chunks) > 1 else chunks[0]


_FIELDS: tuple[str, ...] = (
    "lot_id",
    "account",
    "wallet",
    "asset",
    "open_quantity",
    "open_cost_basis_usd",
    "acquired_at",
)
_SEP = "\x1f"  # ASCII unit separator
_JOINED = " || char(31) || ".join(_FIELDS)
_OPEN = "WHERE status = 'open' ORDER BY rowid"


def _split_chunk(lines: list[str | None]) -> pl.DataFrame | None:
    """Joined lot texts as lot frame rows; None when a text does not split in seven."""
    joined = pl.Series("lot", lines, dtype=pl.String())
    seps = joined.str.count_matches(_SEP, literal=True)
    if seps.null_count() or not (seps == len(_FIELDS) - 1).all():
        return None
    text = joined.str.split_exact(_SEP, len(_FIELDS) - 1).struct.rename_fields(list(LOT_SCHEMA))
    try:
        return text.struct.unnest().with_columns(
            pl.col("quantity", "cost_basis_usd").cast(LOT_SCHEMA["quantity"], strict=True),
            pl.col("acquired_at").str.to_datetime(
                TIME_FORMAT, time_unit="us", time_zone="UTC", strict=True
            ),
        )
    except pl.exceptions.PolarsError:
        return None


def _chunk_by_field(conn: sqlite3.Connection, first: int, last: int) -> pl.DataFrame:
    """Open lots with rowid from `first` to `last`, converted row by row in Python."""
    rows = conn.execute(
        f"SELECT {', '.join(_FIELDS)} FROM lots NOT INDEXED "
        f"WHERE rowid BETWEEN ? AND ? AND status = 'open' ORDER BY rowid",
        (first, last),
    )
    return pl.DataFrame(
        [
            (lot_id, account, wallet, asset, undec(qty), undec(basis), parse_time(acquired))
            for lot_id, account, wallet, asset, qty, basis, acquired in rows
        ],
        schema=LOT_SCHEMA,
        orient="row",
    )
