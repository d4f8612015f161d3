"""Under-water lots and unrealized loss per asset: hand-computed cases, and the gauges."""

from __future__ import annotations

import io

import pytest
from prometheus_client import REGISTRY

from monitor.exposure import Exposure
from monitor.portfolio import parse_portfolio

# Unit bases: X1 100, X2 50, X3 80, X4 200 (asset XEXP); Y1 10 (asset YEXP).
LOTS = """lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at
X1,a,w,XEXP,2,200,2026-01-01
X2,a,w,XEXP,4,200,2026-01-01
X3,b,v,XEXP,1,80,2026-01-01
X4,b,v,XEXP,0.5,100,2026-01-01
Y1,a,w,YEXP,3,30,2026-01-01
"""


@pytest.fixture
def exposure() -> Exposure:
    return Exposure(parse_portfolio(io.StringIO(LOTS), "exposure.csv"))


@pytest.mark.parametrize(
    ("price", "count", "loss"),
    [
        # price 90: X1 (200 - 180 = 20) and X4 (100 - 45 = 55) under water.
        (90.0, 2, 75.0),
        # price 100: X1 exactly at cost is not under water; X4 100 - 50 = 50.
        (100.0, 1, 50.0),
        # price 40: all four; 120 + 40 + 40 + 80 = 280.
        (40.0, 4, 280.0),
        # price 250: nothing under water.
        (250.0, 0, 0.0),
        # price 0: the whole basis is lost.
        (0.0, 4, 580.0),
    ],
)
def test_lots_under_water_and_loss_by_hand(
    exposure: Exposure, price: float, count: int, loss: float
) -> None:
    got_count, got_loss = exposure.at("XEXP", price)
    assert got_count == count
    assert got_loss == pytest.approx(loss)


def test_unknown_asset_is_nothing(exposure: Exposure) -> None:
    assert exposure.at("NOPE", 1.0) == (0, 0.0)
    exposure.update("NOPE", 1.0)
    assert REGISTRY.get_sample_value("hm_lots_under_water", {"asset": "NOPE"}) is None


def test_update_sets_the_gauges_of_that_asset_only(exposure: Exposure) -> None:
    exposure.update("XEXP", 90.0)
    exposure.update("YEXP", 5.0)
    assert REGISTRY.get_sample_value("hm_lots_under_water", {"asset": "XEXP"}) == 2
    assert REGISTRY.get_sample_value("hm_unrealized_loss_usd", {"asset": "XEXP"}) == 75.0
    assert REGISTRY.get_sample_value("hm_lots_under_water", {"asset": "YEXP"}) == 1
    assert REGISTRY.get_sample_value("hm_unrealized_loss_usd", {"asset": "YEXP"}) == 15.0
    exposure.update("XEXP", 250.0)
    assert REGISTRY.get_sample_value("hm_lots_under_water", {"asset": "XEXP"}) == 0
    assert REGISTRY.get_sample_value("hm_lots_under_water", {"asset": "YEXP"}) == 1
