"""`lots remove`: lots imported by mistake leave the book, with a record in the ledger."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.errors import LedgerError
from monitor.ledger import Ledger
from monitor.ledger import lots as lot_rows
from monitor.ledger.migrations import MIGRATIONS, migrate

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_each_import_is_a_batch_and_a_batch_can_be_removed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    mine = ledger.import_lots(write(tmp_path / "mine.csv", "M1,a,w,BTC,1,60000,2025-03-01"))
    wrong = ledger.import_lots(
        write(
            tmp_path / "example.csv", "X1,a,w,ETH,2,8000,2025-01-10", "X2,a,w,SOL,3,300,2025-01-11"
        )
    )
    assert (mine.batch, wrong.batch) == (1, 2)
    assert ledger.remove_lots(batch=2, reason="the example portfolio") == 2
    assert ledger.open_lots()["lot_id"].to_list() == ["M1"]
    [b1, b2] = ledger.import_batches()
    assert (b1.lots, b1.open, b1.removed) == (1, 1, 0)
    assert (b2.lots, b2.open, b2.removed, b2.file) == (2, 0, 2, str(tmp_path / "example.csv"))
    with sqlite3.connect(tmp_path / "l.sqlite") as conn:
        rows = conn.execute(
            "SELECT lot_id, batch, quantity, cost_basis_usd, reason FROM lot_removals ORDER BY id"
        ).fetchall()
    assert rows == [
        ("X1", 2, "2", "8000", "the example portfolio"),
        ("X2", 2, "3", "300", "the example portfolio"),
    ]
    lot = ledger.lot("X1")
    assert lot is not None and lot["status"] == "closed" and lot["open_quantity"] == 0
    ledger.close()


def test_importing_a_removed_lot_again_leaves_it_removed(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    file = write(
        tmp_path / "p.csv", "L1,a,w,BTC,1,60000,2025-03-01", "L2,a,w,ETH,1,3000,2025-03-01"
    )
    ledger.import_lots(file)
    ledger.remove_lots(["L1"], reason="sold elsewhere")
    again = ledger.import_lots(file)
    assert (again.added, again.unchanged, again.removed) == (0, 1, 1)
    assert ledger.open_lots()["lot_id"].to_list() == ["L2"]
    ledger.close()


def test_a_removal_that_cannot_be_done_whole_removes_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    ledger.import_lots(
        write(tmp_path / "p.csv", "L1,a,w,BTC,1,60000,2025-03-01", "L2,a,w,BTC,1,50000,2025-03-02")
    )
    with ledger.db.transaction() as conn:  # L2 was sold: it is part of the tax record
        lot_rows.close_for_sale(
            conn,
            intent_id="hmi_1",
            alert_id="hma_1",
            plan=[("L2", Decimal(1))],
            filled=Decimal(1),
            net_proceeds=Decimal(40000),
            sold_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    with pytest.raises(LedgerError) as caught:
        ledger.remove_lots(["L1", "L2", "NOPE"], reason="x")
    message = str(caught.value)
    assert "lot 'L2' has 1 sale(s) recorded" in message
    assert "lot 'NOPE' is not in the ledger" in message
    assert ledger.open_lots()["lot_id"].to_list() == ["L1"]  # L1 is still there
    with pytest.raises(LedgerError, match="there is no import batch 7"):
        ledger.remove_lots(batch=7, reason="x")
    ledger.close()


def test_lots_imported_before_batches_get_one_batch_per_import(tmp_path: Path) -> None:
    """A ledger written by the first schema: its imports become batches on upgrade."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1])
    for lot_id, source, created in (
        ("A1", "import:a.csv", "2026-01-01T00:00:00.000000Z"),
        ("A2", "import:a.csv", "2026-01-01T00:00:00.000000Z"),
        ("B1", "import:a.csv", "2026-02-01T00:00:00.000000Z"),
        ("R1", "rebuy:hmi_1", "2026-02-02T00:00:00.000000Z"),
    ):
        conn.execute(
            "INSERT INTO lots (lot_id, account, wallet, asset, quantity, cost_basis_usd, "
            "acquired_at, open_quantity, open_cost_basis_usd, status, source, created_at) "
            "VALUES (?, 'a', 'w', 'BTC', '1', '1', ?, '1', '1', 'open', ?, ?)",
            (lot_id, created, source, created),
        )
    conn.close()
    ledger = Ledger(path).open()
    assert [(b.batch, b.file, b.lots) for b in ledger.import_batches()] == [
        (1, "a.csv", 2),
        (2, "a.csv", 1),
    ]
    assert ledger.remove_lots(batch=1, reason="x") == 2
    with pytest.raises(LedgerError, match="was not imported"):
        ledger.remove_lots(["R1"], reason="x")
    assert ledger.open_lots()["lot_id"].to_list() == ["B1", "R1"]
    ledger.close()
