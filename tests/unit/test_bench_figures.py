"""The bench's latency histogram and collector pauses, against hand-counted cases."""

from __future__ import annotations

import gc

from monitor.bench.pauses import CollectorPauses
from monitor.bench.report import Histogram

MS = 1_000_000  # ns


def test_histogram_buckets_by_upper_edge() -> None:
    values = [int(0.5 * MS), 1 * MS, int(1.5 * MS), 150 * MS, 2_000 * MS, 100 * MS]
    h = Histogram.of_ns(values)
    # edges 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, then > 1000: counted by hand
    assert h.counts == (2, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1)
    assert h.buckets()[0] == ("<= 1 ms", 2) and h.buckets()[-1] == ("> 1000 ms", 1)
    assert h.above(100.0) == 2  # 150 ms and 2 s; exactly 100 ms is not above


def test_pauses_count_only_collections_while_recording() -> None:
    pauses = CollectorPauses()
    pauses.install()
    try:
        gc.collect()  # not recording: left out
        pauses.recording = True
        gc.collect(2)
        gc.collect(2)
        gc.collect(0)
        pauses.recording = False
        gc.collect()
    finally:
        pauses.remove()
    by_gen = {p.generation: p for p in pauses.summary()}
    assert (by_gen[2].count, by_gen[0].count) == (2, 1)
    assert by_gen[2].max_ms > 0 and by_gen[2].total_ms >= by_gen[2].max_ms
