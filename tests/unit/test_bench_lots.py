"""The bench's synthetic lots, placed with the daemon's own trigger rules.

The bench puts each lot's trigger at a chosen price; the daemon's book computes the
trigger from the lot on its own (`monitor.book.build_book`). The two must agree, or
the bench measures a different alert rate from the one it designed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from monitor.bench.lots import LotPlan, bench_settings, design_lots
from monitor.bench.market import MarketSpec, steps_for
from monitor.book import build_book

# Packs whose lots keep their own basis (a pooled basis, ca and uk, moves a lot's trigger
# with the other lots of its pool, so no single lot can be placed; so does
# the ytd value model, whose curves the bench's placement does not invert).
CASES = {
    "us": {"tax.jurisdiction": "us"},
    "us, half the loss counts": {"tax.jurisdiction": "us", "tax.inclusion_rate": 0.5},
    "au, long-term discount": {"tax.jurisdiction": "au"},
}


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_each_lot_triggers_where_the_bench_placed_it(overrides: dict[str, object]) -> None:
    settings = bench_settings(overrides)
    plan = LotPlan(3_000, MarketSpec(assets=3, seed=7), steps_for(30_000, 3))
    designed = design_lots(plan, settings)
    book = build_book(settings, designed.frame)
    now_ms = int(time.time() * 1000)
    computed = book.lot_triggers(now_ms)["trigger_usd"].to_numpy()
    # quantities are rounded to 1e-8 units and costs to cents: agreement to 1e-4
    np.testing.assert_allclose(computed, designed.triggers, rtol=1e-4)
