"""Daily events of the index: deadline alerts, threshold schedules, the ytd value model
(rebuilt when the year's position changes), and warnings for buys inside a window."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from monitor.alerts.render import acquisition_alerts
from monitor.alerts.schema import Alert
from monitor.detect import Detector, build_detector
from monitor.portfolio import parse_portfolio
from monitor.settings import load_settings
from monitor.tax.rules import Position
from monitor.tax.windows import Acquisition
from streams.ticks import Tick

HEADER = "lot_id,account,wallet,asset,quantity,cost_basis_usd,acquired_at\n"
# E1 turns long-term on 2026-03-02; E2 on 2026-09-02. Basis 4,000 a unit.
ETH = "E1,a,w,ETH,10,40000,2025-03-01\nE2,a,w,ETH,10,40000,2025-09-01\n"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def detector(lots: str, **overrides: Any) -> Detector:
    # One venue's ticks, acted on at once ([prices] hold_s = 0): the tax logic is tested here.
    settings = load_settings(
        overrides={"prices.usd_quotes": ["USD"], "prices.hold_s": 0, **overrides}
    )
    frame = parse_portfolio(io.StringIO(HEADER + lots), "t.csv")
    return build_detector(settings, frame, event_time=True)


def tick(d: Detector, price: float, at: str, base: str = "ETH") -> list[Alert]:
    ts = ms(at)
    return d.on_tick(Tick("binance", f"{base}/USD", base, "USD", price, ts, ts * 1_000_000))


def test_deadline_alert_before_a_loss_turns_long_term_even_under_the_threshold() -> None:
    """At 3,900 E1 is 1,000 down: under the 5% threshold (2,000), so no harvest; but on
    2026-02-16 it is inside 14 days of 2026-03-02, worth 370 now and 200 then."""
    d = detector(ETH, **{"harvest.deadline_days": 14})
    assert tick(d, 3900.0, "2026-02-15T00:00:00") == []
    (alert,) = tick(d, 3900.0, "2026-02-16T00:00:00")
    assert alert.plan is not None
    assert (alert.kind, alert.lot_ids, alert.plan.deadline) == ("deadline", ["E1"], "2026-03-02")
    assert (alert.short_term_loss_usd, alert.tax_savings_usd) == ("1000.00", "370.00")
    assert tick(d, 3850.0, "2026-02-17T00:00:00") == []  # one deadline alert per lot


def test_deadline_alerts_are_off_by_default() -> None:
    assert tick(detector(ETH), 3900.0, "2026-02-16T00:00:00") == []


def test_de_deadline_before_the_loss_becomes_tax_free() -> None:
    d = detector(ETH, **{"tax.jurisdiction": "de", "harvest.deadline_days": 30})
    (alert,) = tick(d, 3950.0, "2026-02-01T00:00:00")
    assert alert.plan is not None
    assert (alert.kind, alert.plan.deadline) == ("deadline", "2026-03-02")


def test_no_deadline_in_packs_without_a_holding_period() -> None:
    d = detector(ETH, **{"tax.jurisdiction": "uk", "harvest.deadline_days": 30})
    assert tick(d, 3950.0, "2026-02-01T00:00:00") == []


def test_ytd_deadline_only_when_the_loss_loses_value() -> None:
    """With only short-term gains this year a long-term loss nets against them at the same
    0.37, so turning long-term loses nothing (us Schedule D): no deadline alert."""
    d = detector(
        ETH,
        **{
            "tax.value_model": "ytd",
            "tax.ytd_short_term_gain_usd": 5000,
            "harvest.deadline_days": 14,
        },
    )
    assert tick(d, 3900.0, "2026-02-16T00:00:00") == []
    assert d.values.skipped == {"no_value_lost": 1}


SCHEDULE = [
    {"starts": "01-01", "min_loss_pct": 0.30},
    {"starts": "12-01", "min_loss_pct": 0.05},
]


def test_threshold_schedule_wants_a_deeper_loss_in_january() -> None:
    """E2 at 3,600 is 10% down: not enough from 1 January (30%), enough from 1 December."""
    d = detector(ETH, **{"harvest.schedule": SCHEDULE, "harvest.min_loss_usd": 0})
    assert tick(d, 3600.0, "2026-01-15T00:00:00") == []
    rebuilds = d.book.rebuilds
    (alert,) = tick(d, 3600.0, "2026-12-01T00:00:00")
    assert alert.lot_ids == ["E1", "E2"]
    assert d.book.rebuilds == rebuilds + 1


def test_schedule_steps_must_be_in_calendar_order() -> None:
    with pytest.raises(Exception, match="calendar order"):
        load_settings(overrides={"harvest.schedule": list(reversed(SCHEDULE))})


ONE = "L1,a,w,ETH,10,40000,2026-01-10\n"
NET_ONLY = {"harvest.min_loss_usd": 0, "harvest.min_loss_pct": 0}


def test_ytd_trigger_follows_the_year_and_is_rebuilt_when_it_changes() -> None:
    """m = 25, c = 0.003, q = 10, B = 4,000.
    Nothing realized yet: a short-term loss offsets ordinary income at 0.37:
        (0.37 * 40,000 - 25) / (10 * 0.373) = 3,961.126
    After 100,000 of long-term gains: it nets against them at 0.20:
        (0.20 * 40,000 - 25) / (10 * 0.203) = 3,928.571"""
    d = detector(ONE, **{"tax.value_model": "ytd"}, **NET_ONLY)
    at = ms("2026-02-01T00:00:00")
    assert d.book.lot_triggers(at)["trigger_usd"][0] == pytest.approx(14775 / 3.73)
    assert tick(d, 3950.0, "2026-02-01T00:00:00")[0].tax_savings_usd == "185.00"
    rebuilds = d.book.rebuilds
    d.book.set_position("a", Position(long_gains=D(100000)))
    assert d.book.lot_triggers(at)["trigger_usd"][0] == pytest.approx(7975 / 2.03)
    tick(d, 5000.0, "2026-02-01T01:00:00")  # the next tick rebuilds (and re-arms)
    assert d.book.rebuilds == rebuilds + 1
    assert tick(d, 3950.0, "2026-02-01T02:00:00") == []


def test_flat_lot_triggers_for_the_lots_command() -> None:
    d = detector(ONE + "G1,a,w,ETH,1,10,2026-01-10\n", **NET_ONLY)
    triggers = d.book.lot_triggers(ms("2026-02-01T00:00:00"))
    assert triggers["lot_id"].to_list() == ["L1", "G1"]
    assert triggers["trigger_usd"][0] == pytest.approx(14775 / 3.73)
    # G1 (basis $10) cannot clear the $25 net benefit at any price: no trigger.
    assert triggers["trigger_usd"][1] is None


def test_buy_inside_the_window_raises_a_warning_alert() -> None:
    d = detector(ONE, **{"tax.jurisdiction": "uk"})
    d.book.record_harvest("a", "ETH", date(2026, 3, 1), D(5000), D(10))
    inside = Acquisition("a", "ETH", date(2026, 3, 20), D(5), D(15000), lot_id="N1", wallet="w")
    (alert,) = acquisition_alerts(
        d.book, d.values, inside, ts_ms=ms("2026-03-20T00:00:00"), emitted_at=lambda: "t"
    )
    assert alert.plan is not None
    assert (alert.kind, alert.loss_usd, alert.plan.do_not_buy_until) == (
        "wash_warning",
        "2500.00",  # half the quantity back: half the loss at risk
        "2026-04-01",  # 2026-03-02 .. 2026-03-31 match the sale
    )
    assert "bed and breakfast" in alert.plan.warnings[0]
    outside = Acquisition("a", "ETH", date(2026, 4, 1), D(5), D(15000), lot_id="N2")
    assert acquisition_alerts(d.book, d.values, outside, ts_ms=0, emitted_at=lambda: "t") == []
    assert d.book.acquisitions.between("a", "ETH", date(2026, 3, 1), date(2026, 4, 1))
