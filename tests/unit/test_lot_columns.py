"""The compact lot columns, the bulk ledger read and the column-backed acquisitions log."""

from __future__ import annotations

import io
import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from monitor.ledger import Ledger, lot_reads
from monitor.lot_columns import LotColumns
from monitor.portfolio import LOT_SCHEMA, parse_portfolio
from monitor.tax.windows import Acquisition, AcquisitionLog

LOTS = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
L5,bob,w2,ETH,2.5,5000.10,2026-03-02
L1,alice,w1,BTC,0.123456789012345678,12000,2026-03-01
L3,bob,w1,BTC,1,90000.5,2026-01-15
L2,alice,w1,BTC,3,100,2026-03-01
L4,alice,w2,BTC,4,200,2025-12-31
"""


def frame() -> pl.DataFrame:
    return parse_portfolio(io.StringIO(LOTS), "t.csv")


def by_row(conn: sqlite3.Connection) -> pl.DataFrame:
    """The reference: open lots converted one row at a time in Python."""
    rows = conn.execute(
        "SELECT lot_id, account, wallet, asset, open_quantity, open_cost_basis_usd, acquired_at "
        "FROM lots WHERE status = 'open' ORDER BY rowid"
    ).fetchall()
    return pl.DataFrame(
        [
            (
                *r[:4],
                Decimal(r[4]),
                Decimal(r[5]),
                datetime.fromisoformat(r[6].replace("Z", "+00:00")),
            )
            for r in rows
        ],
        schema=LOT_SCHEMA,
        orient="row",
    )


@pytest.mark.parametrize("chunk", [2, 100])
def test_open_lots_reads_in_bulk_what_a_row_by_row_read_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(lot_reads, "READ_CHUNK", chunk)
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path).open()
    ledger.import_frame(frame(), "t.csv")
    with sqlite3.connect(path) as conn:  # text the bulk path cannot split or cast strictly
        conn.execute("UPDATE lots SET account = 'a\x1fb' WHERE lot_id = 'L3'")
        conn.execute("UPDATE lots SET open_quantity = '1E-7' WHERE lot_id = 'L2'")
        conn.execute(
            "UPDATE lots SET acquired_at = '2026-03-02T00:00:00+00:00' WHERE lot_id = 'L5'"
        )
        conn.execute("UPDATE lots SET status = 'closed' WHERE lot_id = 'L4'")
        expected = by_row(conn)
    got = ledger.open_lots()
    ledger.close()
    assert_frame_equal(got, expected)
    assert got["lot_id"].to_list() == ["L5", "L1", "L3", "L2"]
    assert got["account"][2] == "a\x1fb" and got["quantity"][3] == Decimal("1E-7")


def test_open_lots_of_an_empty_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite").open()
    assert_frame_equal(ledger.open_lots(), pl.DataFrame(schema=LOT_SCHEMA))
    ledger.close()


def test_codes_sort_like_names_and_rows_read_exact_values() -> None:
    lots = frame()
    cols = LotColumns.of(lots)
    assert cols.account.names == ["alice", "bob"] and cols.asset.names == ["BTC", "ETH"]
    assert [cols.account[i] for i in range(5)] == lots["account"].to_list()
    assert [cols.wallet[i] for i in range(5)] == lots["wallet"].to_list()
    assert cols.account.codes.dtype == np.uint8
    assert cols.acquired(0) == date(2026, 3, 2) and cols.acquired(4) == date(2025, 12, 31)
    first = cols.rows(np.asarray([1, 0], dtype=np.int64))
    assert [(r.lot_id, r.quantity, r.cost_basis) for r in first] == [
        ("L1", Decimal("0.123456789012345678"), Decimal(12000)),
        ("L5", Decimal("2.5"), Decimal("5000.10")),
    ]
    assert cols.row(1) is first[0]  # kept: a lot that fires again is not read again


def test_wallet_and_account_rows_in_frame_order() -> None:
    cols = LotColumns.of(frame())
    assert cols.wallet_rows("alice", "w1", "BTC").tolist() == [1, 3]
    assert cols.account_rows("alice", "BTC").tolist() == [1, 3, 4]
    assert cols.wallet_rows("alice", "w9", "BTC").size == 0
    assert cols.account_rows("carol", "BTC").size == 0


def test_acquisitions_log_over_the_lots_then_the_added_by_day_and_lot_id() -> None:
    log = AcquisitionLog(lots=LotColumns.of(frame()))
    log.add(Acquisition("alice", "BTC", date(2026, 3, 1), Decimal(1), Decimal(9), lot_id="L0"))
    log.add(Acquisition("alice", "BTC", date(2026, 3, 5), Decimal(1), Decimal(9), lot_id="R1"))
    found = log.between("alice", "BTC", date(2026, 1, 1), date(2026, 3, 4))
    assert [(a.lot_id, a.day, a.wallet) for a in found] == [
        ("L0", date(2026, 3, 1), ""),
        ("L1", date(2026, 3, 1), "w1"),
        ("L2", date(2026, 3, 1), "w1"),
    ]
    assert found[1].quantity == Decimal("0.123456789012345678") and found[1].cost_usd == 12000
    wide = log.between("alice", "BTC", date(2025, 12, 31), date(2026, 3, 5))
    assert [a.lot_id for a in wide] == ["L4", "L0", "L1", "L2", "R1"]
    assert log.between("bob", "ETH", date(2026, 3, 3), date(2026, 4, 1)) == []
    assert log.between("carol", "BTC", date(2000, 1, 1), date(2030, 1, 1)) == []
