"""The reconnect backoff: exponential, full jitter, capped, reset after a healthy spell."""

from __future__ import annotations

import random

from streams.feeds.backoff import Backoff


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    a = Backoff(rng=random.Random(1))
    b = Backoff(rng=random.Random(1))
    assert [a.next_delay() for _ in range(8)] == [b.next_delay() for _ in range(8)]


def test_backoff_cap_doubles_up_to_the_maximum() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(1))
    caps = []
    for _ in range(9):
        caps.append(backoff.cap())
        backoff.next_delay()
    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_delays_are_full_jitter_under_the_cap() -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(3))
    delays = []
    for _ in range(200):
        cap = backoff.cap()
        delays.append(backoff.next_delay() / cap)
    assert 0.0 <= min(delays) < 0.1 and 0.9 < max(delays) <= 1.0


def test_a_long_healthy_connection_resets_the_backoff() -> None:
    backoff = Backoff(0.5, 30.0, reset_after_s=60.0, rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.connection_ended(healthy_for_s=61.0)
    assert backoff.cap() == 0.5


def test_a_short_connection_keeps_backing_off() -> None:
    backoff = Backoff(0.5, 30.0, reset_after_s=60.0, rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.connection_ended(healthy_for_s=2.0)
    assert backoff.cap() == 16.0
