"""Rollover dedupe: two connections carry the same trades; each passes once, in order."""

from __future__ import annotations

from streams.feeds.session import Overlap
from streams.ticks import Tick

OLD, NEW = 1, 2


def trade(n: int, symbol: str = "BTC/USDT") -> Tick:
    return Tick("binance", symbol, symbol[:3], "USDT", 100.0 + n, 1_000 + n, 0)


def deliver(overlap: Overlap, plan: list[tuple[int, int]]) -> list[int]:
    """Feed (connection, trade n) pairs through the overlap; the trades passed on."""
    out = []
    for serial, n in plan:
        if overlap.admit(serial, trade(n), n):
            out.append(n)
    return out


def test_the_old_connection_stays_authoritative_until_the_switch() -> None:
    overlap = Overlap(OLD, NEW)
    passed = deliver(overlap, [(OLD, 1), (NEW, 2), (OLD, 2), (NEW, 3), (OLD, 3)])
    assert passed == [1, 2, 3]


def test_it_is_ready_once_the_old_one_delivered_what_the_new_one_has() -> None:
    overlap = Overlap(OLD, NEW)
    deliver(overlap, [(OLD, 1), (NEW, 2)])
    before = overlap.ready.is_set()
    deliver(overlap, [(OLD, 2)])
    assert (before, overlap.ready.is_set()) == (False, True)


def test_it_is_ready_when_the_old_connection_is_ahead_of_the_new_one() -> None:
    overlap = Overlap(OLD, NEW)
    deliver(overlap, [(OLD, 1), (OLD, 2), (NEW, 2)])
    assert overlap.ready.is_set()


def test_the_switch_releases_what_only_the_new_connection_had_in_order() -> None:
    overlap = Overlap(OLD, NEW)
    deliver(overlap, [(OLD, 1), (NEW, 2), (NEW, 3), (OLD, 2)])
    assert [t.price for t in overlap.switch()] == [103.0]


def test_after_the_switch_late_copies_from_the_old_connection_are_dropped() -> None:
    overlap = Overlap(OLD, NEW)
    deliver(overlap, [(OLD, 1), (NEW, 2), (NEW, 3)])
    overlap.switch()
    assert deliver(overlap, [(OLD, 2), (OLD, 3), (NEW, 4), (OLD, 4)]) == [4]


def test_every_trade_passes_exactly_once_whatever_the_interleaving() -> None:
    overlap = Overlap(OLD, NEW)
    old = [(OLD, n) for n in range(1, 9)]
    new = [(NEW, n) for n in range(4, 12)]
    passed = deliver(overlap, [*old[:3], *new[:2], *old[3:6], *new[2:5]])
    passed += [t.ts_ms - 1_000 for t in overlap.switch()]
    passed += deliver(overlap, [*old[6:], *new[5:]])
    assert sorted(passed) == list(range(1, 12)) and len(passed) == 11


def test_duplicates_are_counted() -> None:
    overlap = Overlap(OLD, NEW)
    deliver(overlap, [(OLD, 1), (NEW, 1), (NEW, 2), (OLD, 2)])
    assert overlap.duplicates == 2


def test_symbols_are_caught_up_one_by_one() -> None:
    overlap = Overlap(OLD, NEW)
    overlap.admit(NEW, trade(5, "BTC/USDT"), 5)
    overlap.admit(NEW, trade(7, "ETH/USDT"), 7)
    overlap.admit(OLD, trade(5, "BTC/USDT"), 5)
    assert not overlap.ready.is_set()
