"""The ledger's writer lock: one daemon per ledger, a dead holder taken over, a lost lock noticed.

Holders are WriterLock objects with given host names and pids over one SQLite ledger
file; "alive" and "dead" pids are real processes (this test's parent, a child that has
exited), so the pid check runs for real.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.ledger.ledger import Ledger
from monitor.ledger.lock import LedgerBusyError, LedgerLockLost, WriterLock
from monitor.ledger.migrations import iso


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite").open()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def age_heartbeat(ledger: Ledger, seconds: float) -> None:
    when = iso(datetime.now(UTC) - timedelta(seconds=seconds))
    with ledger.db.transaction() as conn:
        conn.execute("UPDATE writer_lock SET heartbeat_at = ?", (when,))


def test_a_second_live_writer_is_refused_with_the_holder_named(ledger: Ledger) -> None:
    first = WriterLock(ledger.db, "run", host="host-a", pid=os.getppid())  # alive
    first.acquire()
    second = WriterLock(ledger.db, "detect", host="host-a", pid=os.getpid())
    with pytest.raises(LedgerBusyError) as caught:
        second.acquire()
    message = str(caught.value)
    assert f"is in use by `run` (pid {os.getppid()} on host-a since " in message
    assert "stop it first" in message and "\n" not in message
    assert not second.held
    holder = second.holder()
    assert holder is not None and (holder.role, holder.token) == ("run", 1)


def test_a_holder_whose_pid_is_gone_on_this_host_is_taken_over_at_once(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    gone = dead_pid()
    WriterLock(ledger.db, "run", host="host-a", pid=gone).acquire()
    caplog.set_level(logging.WARNING, "monitor.ledger.lock")
    mine = WriterLock(ledger.db, "run", host="host-a", pid=os.getpid())
    mine.acquire()  # its heartbeat is fresh: only the pid check says it is dead
    assert mine.token == 2
    (record,) = [r for r in caplog.records if "taken over" in r.getMessage()]
    assert record.holder_pid == gone  # type: ignore[attr-defined]


def test_another_hosts_holder_is_alive_until_its_lease_runs_out(ledger: Ledger) -> None:
    WriterLock(ledger.db, "detect", host="host-b", pid=dead_pid(), lease_s=30).acquire()
    mine = WriterLock(ledger.db, "run", host="host-a", pid=os.getpid())
    with pytest.raises(LedgerBusyError, match="on host-b"):
        mine.acquire()  # its pid means nothing here: only the lease counts
    age_heartbeat(ledger, 31)
    mine.acquire()
    assert mine.token == 2


def test_a_holder_taken_over_notices_at_its_next_renewal_and_release_spares_the_new_one(
    ledger: Ledger,
) -> None:
    old = WriterLock(ledger.db, "run", host="host-b", pid=1234, lease_s=30)
    old.acquire()
    age_heartbeat(ledger, 60)  # it stalled past its lease
    new = WriterLock(ledger.db, "run", host="host-a", pid=os.getpid())
    new.acquire()
    with pytest.raises(LedgerLockLost, match=r"taken over by `run` \(pid \d+ on host-a"):
        old.renew()
    old.release()  # no longer its row: nothing deleted
    holder = new.holder()
    assert holder is not None and holder.host == "host-a"
    new.renew()
    new.release()
    assert new.holder() is None
    again = WriterLock(ledger.db, "run", host="host-c", pid=os.getpid())
    again.acquire()
    assert again.token == 3  # tokens only grow, across releases too


def test_renewal_keeps_a_live_holder_and_close_releases(ledger: Ledger, tmp_path: Path) -> None:
    lock = ledger.lock_writer("run", lease_s=30)
    age_heartbeat(ledger, 20)
    lock.renew()
    holder = lock.holder()
    assert holder is not None and holder.silent_s() < 5
    ledger.close()
    again = Ledger(tmp_path / "ledger.sqlite").open()
    try:
        other = WriterLock(again.db, "run", host="elsewhere", pid=1)
        other.acquire()  # free: the first ledger released it when closed
        assert other.token == 2
    finally:
        again.close()


def test_a_live_holder_on_this_host_keeps_the_lock_through_a_stall_but_not_forever(
    ledger: Ledger,
) -> None:
    """Same host, pid alive (this test's parent): a stalled heartbeat (long work on its
    loop) is not taken over after one lease, only after ten (its pid reused elsewhere)."""
    host = "host-a"
    WriterLock(ledger.db, "run", host=host, pid=os.getppid(), lease_s=30).acquire()
    age_heartbeat(ledger, 31)
    mine = WriterLock(ledger.db, "run", host=host, pid=os.getpid())
    with pytest.raises(LedgerBusyError):
        mine.acquire()
    age_heartbeat(ledger, 301)
    mine.acquire()
    assert mine.token == 2


def test_renew_due_renews_only_after_a_third_of_the_lease(ledger: Ledger) -> None:
    lock = WriterLock(ledger.db, "replay", lease_s=30)
    lock.acquire()
    age_heartbeat(ledger, 25)
    lock.renew_due()  # just taken: not due, nothing written
    holder = lock.holder()
    assert holder is not None and holder.silent_s() >= 24
    lock._renewed -= 10.5  # 10.5 s later (a third of 30 s is 10 s)
    lock.renew_due()
    holder = lock.holder()
    assert holder is not None and holder.silent_s() < 5
