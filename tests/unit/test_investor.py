"""The investor's gauges: the distance to the next trigger from the book's index, and the
harvested losses of a tax year by term (hand tables)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from monitor import investor
from monitor.detect import build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import Settings
from monitor.tax.disposal import Disposal, Term
from streams.ticks import Tick

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at"
MARCH_1 = 1_772_323_200_000  # 2026-03-01T00:00:00Z, ms


def test_distance_to_the_highest_trigger_under_the_price() -> None:
    # Short-term, 37%, costs 0.3%, thresholds 100 USD / 5% / net 25 USD (the defaults):
    # 1 IVA at 60000: min(59900, 57000, 59450.40) = 57000;
    # 1 IVA at 50000: min(49900, 47500, 49530.83) = 47500.
    lots = parse_portfolio(
        [HEADER, "L1,a,w,IVA,1,60000,2026-01-02", "L2,a,w,IVA,1,50000,2026-01-02"], "t"
    )
    one_venue = Settings(prices={"hold_s": 0})  # one venue's ticks, acted on at once
    detector = build_detector(one_venue, lots, event_time=True)
    tick = Tick("v", "IVA/USD", "IVA", "USD", 58000.0, MARCH_1, MARCH_1 * 1_000_000)
    detector.on_tick(tick)
    investor.refresh_triggers(detector.book, dict(detector.exposure.prices))
    ratio = REGISTRY.get_sample_value("hm_trigger_distance_ratio", {"asset": "IVA"})
    assert ratio == pytest.approx((58000 - 57000) / 58000)
    # At 56000 the first lot is harvestable: the next one down is 47500.
    detector.on_tick(Tick("v", "IVA/USD", "IVA", "USD", 56000.0, MARCH_1 + 1, tick.recv_ns + 1))
    investor.refresh_triggers(detector.book, dict(detector.exposure.prices))
    ratio = REGISTRY.get_sample_value("hm_trigger_distance_ratio", {"asset": "IVA"})
    assert ratio == pytest.approx((56000 - 47500) / 56000)
    # Under every trigger: no distance left to show.
    detector.on_tick(Tick("v", "IVA/USD", "IVA", "USD", 40000.0, MARCH_1 + 2, tick.recv_ns + 2))
    investor.refresh_triggers(detector.book, dict(detector.exposure.prices))
    assert REGISTRY.get_sample_value("hm_trigger_distance_ratio", {"asset": "IVA"}) is None


def disposal(
    term: Term,
    proceeds: str,
    basis: str,
    *,
    harvest: bool = True,
    sold_on: date = date(2026, 3, 1),
    disallowed: str = "0",
) -> Disposal:
    return Disposal(
        lot_id="L",
        account="a",
        wallet="w",
        asset="BTC",
        quantity=Decimal(1),
        acquired_on=date(2025, 1, 1),
        sold_on=sold_on,
        proceeds_usd=Decimal(proceeds),
        cost_basis_usd=Decimal(basis),
        term=term,
        harvest=harvest,
        disallowed_loss_usd=Decimal(disallowed),
    )


def test_harvested_losses_by_term_in_the_year_net_of_disallowed_parts() -> None:
    found = investor.harvested_by_term(
        [
            disposal("short", "900", "1000"),  # 100
            disposal("short", "500", "800", disallowed="50"),  # 300 - 50
            disposal("long", "100", "400"),  # 300
            disposal("long", "700", "600"),  # a gain: nothing harvested
            disposal("long", "0", "999", harvest=False),  # an ordinary sale
            disposal("short", "0", "999", sold_on=date(2025, 12, 31)),  # last year
        ],
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    assert found == {"short": Decimal(350), "long": Decimal(300)}
