"""The ledger on a real SQLite file: migrations, the AlertStore contract, lot import."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.errors import LedgerError, PortfolioError
from monitor.ledger import Ledger
from monitor.ledger.migrations import MIGRATIONS, Migration, migrate
from monitor.portfolio import load_portfolio

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def test_new_file_gets_every_migration_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.sqlite"
    ledger = Ledger(path).open()
    ledger.close()
    assert ledger.schema_version == len(MIGRATIONS)
    expected = {"lots", "lot_events", "alerts", "dead_letters", "intents", "orders", "fills"}
    assert expected | {"disposals", "schema_version"} <= tables(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with_lot = write(tmp_path / "p.csv", "L1,a,w,BTC,1.5,60000.10,2025-03-01")
    first = Ledger(path).open()
    first.import_lots(with_lot)
    first.close()
    again = Ledger(path).open()
    assert again.schema_version == len(MIGRATIONS)
    assert again.open_lots()["lot_id"].to_list() == ["L1"]
    again.close()
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [v[0] for v in versions] == list(range(1, len(MIGRATIONS) + 1))


def test_an_added_migration_upgrades_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).open().close()
    extra = (
        *MIGRATIONS,
        Migration(len(MIGRATIONS) + 1, "a note column", "ALTER TABLE lots ADD COLUMN note TEXT;"),
    )
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, extra) == len(extra)
    assert migrate(conn, extra) == len(extra)  # nothing left to do
    columns = [r[1] for r in conn.execute("PRAGMA table_info(lots)")]
    conn.close()
    assert "note" in columns


def test_a_second_opener_racing_the_first_applies_no_migration_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes opening one new ledger at once: the loser of the race sees version 0,
    then waits for the write lock while the winner migrates; it must not apply them again."""
    from monitor.ledger import migrations

    path = tmp_path / "ledger.sqlite"
    winner = sqlite3.connect(path, isolation_level=None)
    loser = sqlite3.connect(path, isolation_level=None)
    real = migrations.current_version
    calls = {"n": 0}

    def stale_then_real(conn: sqlite3.Connection) -> int:
        calls["n"] += 1
        if calls["n"] == 1:  # the loser's first read, before the winner ran
            migrate(winner)
            return 0
        return real(conn)

    monkeypatch.setattr(migrations, "current_version", stale_then_real)
    assert migrate(loser) == len(MIGRATIONS)
    monkeypatch.setattr(migrations, "current_version", real)
    rows = loser.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
    winner.close()
    loser.close()
    assert rows == len(MIGRATIONS)


def test_a_ledger_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).open().close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', '2030-01-01')")
    with pytest.raises(LedgerError, match="schema version 99"):
        Ledger(path).open()


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database at all, not even close" * 20)
    with pytest.raises(LedgerError, match="not a harvest-monitor ledger or damaged"):
        Ledger(path).open()


# --- AlertStore contract -----------------------------------------------------------


def test_alerts_are_stored_once_and_replayed_after_an_id(tmp_path: Path) -> None:
    store = Ledger(tmp_path / "l.sqlite").open().alerts
    rows = [(f"hma_{i:024x}", f"2026-03-01T12:00:0{i}.000Z", b'{"n":%d}' % i) for i in range(5)]
    assert store.record_alerts(rows[:3]) == [r[0] for r in rows[:3]]
    # overlapping batch (and an id twice in it): the known ids are ignored, the new returned
    assert store.record_alerts([*rows[1:], rows[4]]) == [r[0] for r in rows[3:]]
    assert store.record_alerts(rows) == []
    after = store.alerts_since(rows[1][0])
    assert [a.alert_id for a in after] == [r[0] for r in rows[2:]]
    assert [a.seq for a in after] == sorted(a.seq for a in after)
    assert after[0].body == rows[2][2]
    assert store.alerts_since(rows[4][0]) == []
    assert store.alerts_since("hma_" + "f" * 24) == []  # unknown id: nothing to place it
    assert len(store.alerts_since(rows[0][0], limit=2)) == 2


def test_alerts_since_a_time_is_at_or_after_it(tmp_path: Path) -> None:
    store = Ledger(tmp_path / "l.sqlite").open().alerts
    store.record_alerts([(f"hma_{i:024x}", f"2026-03-01T12:00:0{i}.000Z", b"{}") for i in range(4)])
    ids = [a.alert_id for a in store.alerts_since("2026-03-01T12:00:02Z")]
    assert ids == [f"hma_{2:024x}", f"hma_{3:024x}"]
    ids = [a.alert_id for a in store.alerts_since("2026-03-01T13:00:01.5+01:00")]
    assert ids == [f"hma_{i:024x}" for i in range(2, 4)]


def test_dead_letters_round_trip(tmp_path: Path) -> None:
    store = Ledger(tmp_path / "l.sqlite").open().alerts
    store.add_dead_letter("hook-a", "hma_1", b"{1}", 8, "HTTP 500")
    store.add_dead_letter("hook-b", "hma_2", b"{2}", 3, "timeout")
    assert [d.alert_id for d in store.dead_letters()] == ["hma_1", "hma_2"]
    only_b = store.dead_letters("hook-b")
    assert [(d.subscription, d.attempts, d.last_error, d.body) for d in only_b] == [
        ("hook-b", 3, "timeout", b"{2}")
    ]
    store.remove_dead_letter(only_b[0].id)
    assert [d.subscription for d in store.dead_letters()] == ["hook-a"]


# --- lots import ---------------------------------------------------------------------


def test_import_is_idempotent_by_lot_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    csv = write(
        tmp_path / "p.csv",
        "L1,a,w,BTC,1.5,60000.10,2025-03-01",
        "L2,a,w,ETH,0.123456789012345678,400.5,2024-01-15T10:00:00Z",
    )
    first = ledger.import_lots(csv)
    again = ledger.import_lots(csv)
    assert (first.added, first.unchanged) == (2, 0)
    assert (again.added, again.unchanged) == (0, 2)
    frame = ledger.open_lots()
    assert frame.height == 2
    assert frame.equals(load_portfolio(csv))  # exact decimals and times survive the ledger
    assert ledger.lot_events("L1") == [("opened", "1.5", "60000.1")]


def test_import_adds_only_new_lots(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    ledger.import_lots(write(tmp_path / "a.csv", "L1,a,w,BTC,1,100,2025-03-01"))
    result = ledger.import_lots(
        write(tmp_path / "b.csv", "L1,a,w,BTC,1.0,100.00,2025-03-01", "L3,a,w,SOL,2,50,2025-05-01")
    )
    assert (result.added, result.unchanged) == (1, 1)
    assert ledger.open_lots()["lot_id"].to_list() == ["L1", "L3"]


def test_a_changed_lot_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    ledger.import_lots(write(tmp_path / "a.csv", "L1,a,w,BTC,1,100,2025-03-01"))
    changed = write(tmp_path / "b.csv", "L9,a,w,SOL,2,50,2025-05-01", "L1,a,w,BTC,2,100,2025-03-01")
    with pytest.raises(PortfolioError) as info:
        ledger.import_lots(changed)
    assert (
        f"{changed}:3: lot_id: 'L1' is already in the ledger with quantity 1 (this file: 2)"
        in str(info.value)
    )
    assert ledger.open_lots()["lot_id"].to_list() == ["L1"]  # L9 not half-imported


def test_bad_rows_are_reported_with_file_and_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite").open()
    bad = write(tmp_path / "bad.csv", "L1,a,w,BTC,1,100,2025-03-01", "L2,a,w,ETH,-1,100,yesterday")
    with pytest.raises(PortfolioError) as info:
        ledger.import_lots(bad)
    text = str(info.value)
    assert f"{bad}:3: quantity: '-1' must be above 0" in text
    assert f"{bad}:3: acquired_at:" in text
    assert not ledger.has_lots()


def test_decimals_are_stored_as_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = Ledger(path).open()
    ledger.import_lots(write(tmp_path / "p.csv", "L1,a,w,BTC,0.000000000000000001,0.10,2025-03-01"))
    lot = ledger.lot("L1")
    assert lot is not None and lot["open_quantity"] == Decimal("1E-18")
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT quantity, typeof(quantity), cost_basis_usd FROM lots").fetchone()
    assert row == ("0.000000000000000001", "text", "0.1")
