"""The harvest plan on alerts, by hand: lot selection, rounding, rebuy, and what each
jurisdiction's pack changes (pool basis, same-day matching, wash sales, FIFO).

Defaults unless stated: rates 0.37 / 0.20, cost 0.003 per round trip (0.0015 a leg),
min loss $100 and 5%, min net benefit $25.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from monitor.alerts.schema import Alert
from monitor.detect import Detector, build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.tax.packs import PACKS_DIR
from streams.ticks import Tick

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def detector(lots: str, **overrides: Any) -> Detector:
    # One venue's ticks, acted on at once ([prices] hold_s = 0): the tax logic is tested here.
    settings = load_settings(
        overrides={"prices.usd_quotes": ["USD"], "prices.hold_s": 0, **overrides}
    )
    return build_detector(
        settings, parse_portfolio(io.StringIO(HEADER + lots), "t.csv"), event_time=True
    )


def tick(d: Detector, price: float, at: str, base: str = "BTC") -> list[Alert]:
    ts = ms(at)
    return d.on_tick(Tick("binance", f"{base}/USD", base, "USD", price, ts, ts * 1_000_000))


SELECTION = """L1,a,w,SOL,10,1600,2026-01-03
L2,a,w,SOL,4,1600,2026-01-02
L3,a,w,SOL,20,3000,2026-01-01
"""


def sold(alert: Alert) -> list[tuple[str, str]]:
    assert alert.plan is not None
    return [(lot.lot_id, lot.quantity) for lot in alert.plan.lots]


def test_max_loss_sells_the_largest_losses_first_up_to_the_cap() -> None:
    """At 100, losses are L2 1,200 > L3 1,000 > L1 600; $1,000 buys 10 units:
    all 4 of L2, then 6 of L3's 20 (basis 3,000 * 6/20 = 900)."""
    d = detector(SELECTION, **{"harvest.max_sell_usd": 1000})
    (alert,) = tick(d, 100.0, "2026-02-01T00:00:00", "SOL")
    assert sold(alert) == [("L2", "4"), ("L3", "6")]
    assert (alert.quantity, alert.cost_basis_usd, alert.loss_usd) == ("10", "2500.00", "1500.00")
    # 0.37 * 1,500 = 555; cost 0.003 * 1,000 = 3.
    assert (alert.tax_savings_usd, alert.cost_usd, alert.net_benefit_usd) == (
        "555.00",
        "3.00",
        "552.00",
    )


def test_hifo_sells_the_highest_unit_cost_first() -> None:
    d = detector(SELECTION, **{"harvest.max_sell_usd": 1000, "harvest.lot_selection": "hifo"})
    # In selection order (a partial fill sells the first of them): L2's unit cost is higher.
    assert sold(tick(d, 100.0, "2026-02-01T00:00:00", "SOL")[0]) == [("L2", "4"), ("L1", "6")]


def test_fifo_sells_the_oldest_first() -> None:
    d = detector(SELECTION, **{"harvest.max_sell_usd": 1000, "harvest.lot_selection": "fifo"})
    assert sold(tick(d, 100.0, "2026-02-01T00:00:00", "SOL")[0]) == [("L3", "10")]


def test_quantity_rounds_down_to_the_step_size() -> None:
    d = detector(SELECTION, **{"harvest.step_sizes": {"SOL": "4"}})
    (alert,) = tick(d, 100.0, "2026-02-01T00:00:00", "SOL")
    assert alert.quantity == "32"  # 34 held
    # Largest loss first (L2 1,200, L3 1,000, L1 600): the step trims the last, L1.
    assert sold(alert) == [("L2", "4"), ("L3", "20"), ("L1", "8")]


def test_below_min_notional_is_skipped_with_its_reason() -> None:
    d = detector(SELECTION, **{"harvest.min_notional_usd": 5000})  # 34 * 100 = 3,400
    assert tick(d, 100.0, "2026-02-01T00:00:00", "SOL") == []
    assert d.values.skipped == {"below_min_notional": 1}


def test_below_one_step_is_skipped_with_its_reason() -> None:
    d = detector(SELECTION, **{"harvest.step_size": "100"})
    assert tick(d, 100.0, "2026-02-01T00:00:00", "SOL") == []
    assert d.values.skipped == {"below_step_size": 1}


ONE = "B1,a,w,BTC,1,60000,2025-06-01\n"


def test_default_plan_rebuys_the_same_asset_and_costs_two_legs() -> None:
    (alert,) = tick(detector(ONE), 47000.0, "2026-02-10T00:00:00")
    assert alert.plan is not None
    assert (alert.plan.legs, alert.plan.rebuy.mode, alert.plan.rebuy.not_before) == (
        2,
        "same",
        "2026-02-10",
    )
    # Short-term loss 13,000: 4,810 now; the rebuy's basis is 13,000 lower, which costs
    # 0.20 * 13,000 = 2,600 later: deferral 2,600, permanent 2,210 (the rate difference).
    assert (alert.cost_usd, alert.plan.deferral_usd, alert.plan.permanent_usd) == (
        "141.00",
        "2600.00",
        "2210.00",
    )


def test_no_rebuy_costs_one_leg_and_is_all_permanent() -> None:
    (alert,) = tick(detector(ONE, **{"harvest.rebuy": "none"}), 47000.0, "2026-02-10T00:00:00")
    assert alert.plan is not None
    assert (alert.plan.legs, alert.cost_usd, alert.plan.permanent_usd) == (1, "70.50", "4810.00")


def test_replacement_asset_and_fallback_when_it_is_on_the_do_not_buy_list() -> None:
    settings = {
        "tax.jurisdiction": "uk",
        "harvest.rebuy": "replacement",
        "harvest.replacements": {"BTC": "ETH"},
        "harvest.rebuy_delay_days": 1,
    }
    d = detector(ONE, **settings)
    (alert,) = tick(d, 47000.0, "2026-02-10T00:00:00")
    assert alert.plan is not None
    assert (alert.plan.rebuy.mode, alert.plan.rebuy.asset, alert.plan.rebuy.not_before) == (
        "replacement",
        "ETH",
        "2026-02-11",
    )
    d2 = detector(ONE, **settings)
    d2.book.record_harvest("a", "ETH", datetime(2026, 2, 1).date(), D(500), D(1))
    (again,) = tick(d2, 47000.0, "2026-02-10T00:00:00")
    assert again.plan is not None
    assert (again.plan.rebuy.mode, again.plan.rebuy.not_before) == ("same", "2026-03-13")
    assert "on the do-not-buy list" in again.plan.warnings[0]


def test_uk_and_au_never_rebuy_the_same_asset_at_once() -> None:
    for pack, first in (("uk", "2026-03-13"), ("au", "2026-03-12"), ("ca", "2026-03-13")):
        (alert,) = tick(detector(ONE, **{"tax.jurisdiction": pack}), 47000.0, "2026-02-10T00:00")
        assert alert.plan is not None
        assert (alert.plan.rebuy.not_before, alert.plan.do_not_buy_until) == (first, first)
        assert alert.plan.warnings and alert.plan.warnings[0].startswith(f"{pack}: not before")


TWO_WALLETS = "W1,a,w1,BTC,1,60000,2025-01-01\nW2,a,w2,BTC,1,40000,2025-01-01\n"


def test_us_sells_the_lot_uk_and_ca_sell_from_the_average_cost_pool() -> None:
    us = tick(detector(TWO_WALLETS), 45000.0, "2026-02-10T00:00:00")
    assert [(a.wallet, a.cost_basis_usd, a.loss_usd) for a in us] == [
        ("w1", "60000.00", "15000.00")
    ]
    for pack in ("uk", "ca"):
        pooled = tick(detector(TWO_WALLETS, **{"tax.jurisdiction": pack}), 45000.0, "2026-02-10")
        assert [(a.wallet, a.cost_basis_usd, a.loss_usd) for a in pooled] == [
            ("w1", "50000.00", "5000.00"),
            ("w2", "50000.00", "5000.00"),
        ]
        assert pooled[0].plan is not None and pooled[0].plan.lot_selection == "pool"


def test_uk_same_day_purchase_is_matched_first() -> None:
    """Pool: 1 BTC for 60,000. Bought today 0.5 for 22,500; sell 1.5 at 45,000 (67,500).
    Matched (TCGA 1992 s105 then s104): 0.5 same day (22,500) + 1 from the pool (60,000)
    = 82,500 of cost: a 15,000 loss, booked once (not a 22,500 loss less a 7,500
    'disallowance')."""
    lots = "P1,a,w,BTC,1,60000,2025-01-01\nS1,a,w,BTC,0.5,22500,2026-02-10\n"
    (alert,) = tick(detector(lots, **{"tax.jurisdiction": "uk"}), 45000.0, "2026-02-10T00:00")
    assert alert.plan is not None
    assert (alert.cost_basis_usd, alert.loss_usd, alert.plan.disallowed_loss_usd) == (
        "82500.00",
        "15000.00",
        "0.00",
    )
    assert any("same_day 0.5; s104 1" in w for w in alert.plan.warnings)
    assert alert.tax_savings_usd == "5550.00"  # 0.37 * 15,000


WASH = "L1,a,w,BTC,1,60000,2025-06-01\nR1,a,w2,BTC,0.5,20000,2026-01-20\n"


def test_us_wash_sale_window_reports_the_disallowed_part_and_its_date() -> None:
    d = detector(WASH, **{"tax.wash_sale_days": 30})
    (alert,) = tick(d, 47000.0, "2026-02-10T00:00:00")
    assert alert.plan is not None
    # R1 (0.5, bought 21 days before) replaces half of L1: 6,500 of 13,000 disallowed,
    # allowed for a sale from 2026-02-20 (31 days after R1).
    assert (alert.plan.disallowed_loss_usd, alert.plan.allowed_from) == ("6500.00", "2026-02-20")
    assert alert.tax_savings_usd == "2405.00"  # 0.37 * 6,500
    assert tick(detector(WASH), 47000.0, "2026-02-10T00:00")[0].tax_savings_usd == "4810.00"


def test_a_pack_may_exclude_lots_with_a_disallowed_loss(tmp_path: Path) -> None:
    text = (PACKS_DIR / "us.toml").read_text().replace('name = "us"', 'name = "strict"')
    (tmp_path / "strict.toml").write_text(
        text.replace('on_disallowed = "report"', 'on_disallowed = "exclude"')
    )
    settings = {"tax.jurisdiction": "strict", "tax.packs_dir": str(tmp_path)}
    d = detector(WASH, **settings, **{"tax.wash_sale_days": 30})
    assert tick(d, 47000.0, "2026-02-10T00:00:00") == []
    assert d.values.skipped == {"disallowed": 1}


def test_de_sells_first_in_first_out_and_long_term_units_are_worth_nothing() -> None:
    """OLD (2024, long-term, in profit) must be sold before YOUNG (short-term, 13,000 down):
    the plan sells both; only YOUNG's loss counts (0.37 * 13,000 = 4,810), the cost
    covers both (0.003 * 94,000 = 282)."""
    lots = "OLD,a,w,BTC,1,10000,2024-01-01\nYOUNG,a,w,BTC,1,60000,2026-01-10\n"
    (alert,) = tick(detector(lots, **{"tax.jurisdiction": "de"}), 47000.0, "2026-02-10T00:00")
    assert alert.plan is not None
    assert (alert.lot_ids, alert.plan.lot_selection) == (["OLD", "YOUNG"], "fifo_consumption")
    assert (alert.short_term_loss_usd, alert.long_term_loss_usd) == ("13000.00", "-37000.00")
    assert (alert.tax_savings_usd, alert.cost_usd) == ("4810.00", "282.00")
    assert alert.plan.deferral_usd == "0.00"  # the rebuy turns tax-free after a year
    # The sale realizes OLD's 37,000 gain (tax-free) beside YOUNG's loss: the alert says so.
    assert "this sale realizes gains too: 37000.00 on 1 lot(s)" in alert.plan.warnings[0]


def test_a_sale_netting_to_a_gain_is_not_proposed() -> None:
    """de, both lots short-term: OLD (bought 2025-12-01 for 10,000) must be sold before
    YOUNG (13,000 under water): together a 37,000 - 13,000 = 24,000 net gain, no harvest."""
    lots = "OLD,a,w,BTC,1,10000,2025-12-01\nYOUNG,a,w,BTC,1,60000,2026-01-10\n"
    d = detector(lots, **{"tax.jurisdiction": "de"})
    assert tick(d, 47000.0, "2026-02-10T00:00") == []
    assert d.values.skipped == {"net_gain": 1}


def test_de_long_term_lot_under_water_is_not_proposed() -> None:
    lots = "OLD,a,w,BTC,1,90000,2024-01-01\n"
    assert tick(detector(lots, **{"tax.jurisdiction": "de"}), 47000.0, "2026-02-10") == []
    assert tick(detector(lots), 47000.0, "2026-02-10")[0].long_term_loss_usd == "43000.00"
