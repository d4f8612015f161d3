"""The plan's lots by hand: one alert per (account, wallet) wherever its lots sit in the
portfolio, a fractional step size, and de's first-in-first-out sale (which oldest lots,
where it stops, the loss and term split).

Defaults unless stated: rates 0.37 / 0.20, cost 0.003 per round trip (0.0015 a leg),
min loss $100 and 5%, min net benefit $25 (see tests/unit/test_tax_plan.py).
"""

from __future__ import annotations

from tests.unit.test_tax_plan import detector, sold, tick


def test_lots_of_one_wallet_apart_in_the_portfolio_make_one_alert() -> None:
    """a/w1's lots are rows 1 and 3, a/w2's row 2: two alerts (one sale, one pair of
    fees each), not three. At 100: W1a loses 1,000, W1b 500, W2 800."""
    lots = (
        "W1a,a,w1,SOL,10,2000,2026-01-02\n"
        "W2,a,w2,SOL,8,1600,2026-01-03\n"
        "W1b,a,w1,SOL,5,1000,2026-01-04\n"
    )
    alerts = tick(detector(lots), 100.0, "2026-02-01T00:00:00", "SOL")
    assert [(a.wallet, sorted(a.lot_ids)) for a in alerts] == [
        ("w1", ["W1a", "W1b"]),
        ("w2", ["W2"]),
    ]
    w1, w2 = alerts
    # w1: 15 units, basis 3,000, loss 1,500; 0.37 * 1,500 = 555; cost 0.003 * 1,500 = 4.50.
    assert (w1.quantity, w1.cost_basis_usd, w1.loss_usd) == ("15", "3000.00", "1500.00")
    assert (w1.tax_savings_usd, w1.cost_usd) == ("555.00", "4.50")
    # w2: 8 units, loss 800; 0.37 * 800 = 296; cost 0.003 * 800 = 2.40.
    assert (w2.quantity, w2.loss_usd, w2.tax_savings_usd, w2.cost_usd) == (
        "8",
        "800.00",
        "296.00",
        "2.40",
    )


def test_a_fractional_step_size_trims_the_last_lot() -> None:
    """0.0123 + 0.0456 = 0.0579 BTC held, step 0.001: 0.057 sold. Largest loss first at
    50,000: L1 (basis 1,000, worth 615: loss 385) then L2 (basis 2,500, worth 2,280: loss
    220), so L2 gives 0.057 - 0.0123 = 0.0447 of its 0.0456."""
    lots = "L1,a,w,BTC,0.0123,1000,2026-01-02\nL2,a,w,BTC,0.0456,2500,2026-01-03\n"
    d = detector(lots, **{"harvest.step_sizes": {"BTC": "0.001"}})
    (alert,) = tick(d, 50000.0, "2026-02-01T00:00:00")
    assert alert.quantity == "0.057"
    assert sold(alert) == [("L1", "0.0123"), ("L2", "0.0447")]
    # L2's basis pro rata: 2,500 * 0.0447 / 0.0456 = 2,450.657894...; with L1: 3,450.66.
    assert alert.cost_basis_usd == "3450.66"


def test_min_notional_is_checked_on_the_quantity_sent() -> None:
    """0.00019 BTC (basis 20) at 60,000 is 11.40 held; the step 0.0001 leaves 0.0001
    (6.00) to send, under a min notional of 10: skipped, with that reason."""
    lots = "T,a,w,BTC,0.00019,20,2026-01-02\n"
    overrides = {"harvest.step_size": "0.0001", "harvest.min_notional_usd": 10,
                 "harvest.min_loss_usd": 1, "harvest.min_net_benefit_usd": 0}  # fmt: skip
    d = detector(lots, **overrides)
    assert tick(d, 60000.0, "2026-02-01T00:00:00") == []
    assert d.values.skipped == {"below_min_notional": 1}


DE_LOTS = (
    "ANCIENT,a,w,BTC,1,10000,2024-01-01\n"  # long-term (over a year): gain 37,000
    "OLD,a,w,BTC,1,50000,2025-03-01\n"  # short-term: loss 3,000 (crossed)
    "GAIN,a,w,BTC,1,45000,2025-04-01\n"  # short-term: gain 2,000 (not crossed)
    "MID,a,w,BTC,1,60000,2025-06-01\n"  # short-term: loss 13,000 (crossed)
    "NEW,a,w,BTC,1,45000,2026-01-20\n"  # short-term: gain 2,000 (not crossed)
    "OTHER,a,w2,BTC,1,90000,2025-01-01\n"  # another wallet: its own FIFO queue
)


def test_de_sells_the_oldest_lots_up_to_the_best_crossed_lot_and_stops() -> None:
    """At 47,000 on 10 Feb 2026, wallet w's FIFO prefixes ending at a crossed lot:
    to OLD: short loss 3,000 (0.37 -> 1,110), long gain 37,000 (tax-free in de), cost
    0.003 * 94,000 = 282: 828. To MID: short 3,000 - 2,000 + 13,000 = 14,000 (5,180),
    cost 0.003 * 188,000 = 564: 4,616, the best. So ANCIENT, OLD, GAIN and MID are sold
    and NEW is not; the long-term part is ANCIENT's gain."""
    alerts = tick(detector(DE_LOTS, **{"tax.jurisdiction": "de"}), 47000.0, "2026-02-10T00:00")
    mine = [a for a in alerts if a.wallet == "w"]
    (alert,) = mine
    assert alert.plan is not None
    assert sold(alert) == [("ANCIENT", "1"), ("OLD", "1"), ("GAIN", "1"), ("MID", "1")]
    assert alert.quantity == "4"
    assert (alert.short_term_loss_usd, alert.long_term_loss_usd) == ("14000.00", "-37000.00")
    assert (alert.tax_savings_usd, alert.cost_usd) == ("5180.00", "564.00")
